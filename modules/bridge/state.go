package bridge

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// ErrNoLink is returned for the state of an interface the namespace does not have.
var ErrNoLink = errors.New("no such interface")

// State is an interface's live state, as LXD's network state shows it (`lxc network info`).
type State struct {
	Addresses []Address
	// Counters of the interface since it was made.
	BytesReceived, BytesSent, PacketsReceived, PacketsSent uint64
	Hwaddr                                                 string
	MTU                                                    int
	Up                                                     bool
	// Type is LXD's: "broadcast", "loopback", "point-to-point" or "unknown".
	Type string
	// Bridge is set for a bridge.
	Bridge *BridgeState
}

// Address is one address of an interface.
type Address struct {
	Family  string // "inet" or "inet6"
	Address string
	Netmask string // the prefix length
	Scope   string // "global", "link", "local"
}

// BridgeState is what a bridge has besides an interface's state.
type BridgeState struct {
	// UpperDevices are the interfaces attached to it (containers' veths, external ones).
	UpperDevices []string
	// VlanFiltering and VlanDefault are its VLAN settings (VlanDefault 0: unknown).
	VlanFiltering bool
	VlanDefault   uint16
}

// State reads the live state of interface name (a bridge orch made or any other) in the
// manager's namespace.
func (m *Manager) State(name string) (State, error) {
	l, err := m.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return State{}, fmt.Errorf("%w: %s", ErrNoLink, name)
		}
		return State{}, fmt.Errorf("interface %s: %w", name, err)
	}
	a := l.Attrs()
	st := State{Hwaddr: a.HardwareAddr.String(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0, Type: linkType(a.Flags)}
	if s := a.Statistics; s != nil {
		st.BytesReceived, st.BytesSent, st.PacketsReceived, st.PacketsSent = s.RxBytes, s.TxBytes, s.RxPackets, s.TxPackets
	}
	addrs, err := m.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return State{}, fmt.Errorf("addresses of %s: %w", name, err)
	}
	for _, ad := range addrs {
		st.Addresses = append(st.Addresses, address(ad))
	}
	if br, ok := l.(*netlink.Bridge); ok {
		if st.Bridge, err = m.bridgeState(br); err != nil {
			return State{}, err
		}
	}
	return st, nil
}

// bridgeState lists br's attached interfaces and its VLAN settings.
func (m *Manager) bridgeState(br *netlink.Bridge) (*BridgeState, error) {
	links, err := m.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("interfaces of %s: %w", br.Name, err)
	}
	bs := &BridgeState{UpperDevices: []string{}}
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Index {
			bs.UpperDevices = append(bs.UpperDevices, l.Attrs().Name)
		}
	}
	if br.VlanFiltering != nil {
		bs.VlanFiltering = *br.VlanFiltering
	}
	if br.VlanDefaultPVID != nil {
		bs.VlanDefault = *br.VlanDefaultPVID
	}
	return bs, nil
}

// address is one netlink address as LXD shows it.
func address(a netlink.Addr) Address {
	fam := "inet"
	if a.IP.To4() == nil {
		fam = "inet6"
	}
	ones, _ := a.Mask.Size()
	scope := "global"
	switch {
	case a.IP.IsLoopback():
		scope = "local"
	case a.IP.IsLinkLocalUnicast():
		scope = "link"
	}
	return Address{Family: fam, Address: a.IP.String(), Netmask: fmt.Sprint(ones), Scope: scope}
}

// linkType is LXD's type of an interface from its flags.
func linkType(f net.Flags) string {
	switch {
	case f&net.FlagLoopback != 0:
		return "loopback"
	case f&net.FlagPointToPoint != 0:
		return "point-to-point"
	case f&net.FlagBroadcast != 0:
		return "broadcast"
	}
	return "unknown"
}
