package lab

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The kernel's ARP table is one table for every network namespace: its garbage-collection
// thresholds (net.ipv4.neigh.default.gc_thresh2 = 512, gc_thresh3 = 1024) count the
// dynamic entries of all namespaces together and can only be set in the root namespace.
// Real machines each have their own table; the lab's hosts share one. At 200 hosts the
// entries a cluster needs (the control node and each host, each host and the gateway, the
// agent relay's lenders and fetchers, the leader and each member: ~1,000) filled it:
// `neighbor table overflow!`, new entries refused, and packets to an unresolved neighbour
// dropped for as long as it lasted, so that joins waited for TCP's SYN retransmits (up to
// 30 s, issue 19). Each re-resolution was also an ARP broadcast that the bridge copied to
// every port at once, overflowing the receive backlog (softnet drops in multiples of the
// port count).
//
// So a namespace host's neighbours are pinned: every host's eth0 and the bridge get a MAC
// derived from their address (macOf), and each namespace, and the root namespace on the
// bridge, holds a permanent entry for each namespace host and the gateway. Permanent
// entries are exempt from the shared thresholds (kernel 4.19+), so each lab host resolves
// its neighbours in a table no other host fills, as on a real machine; no ARP broadcast
// crosses the bridge between namespace hosts. Debian hosts (LXC containers) keep dynamic
// resolution: they are few.

// macOf is the link address the lab gives the interface holding ip: locally administered,
// unicast (02:00) followed by the IPv4 address, so it is unique on the machine (labs use
// distinct subnets) and stays the same across a host's restarts.
func macOf(ip net.IP) net.HardwareAddr {
	v4 := ip.To4()
	return net.HardwareAddr{0x02, 0x00, v4[0], v4[1], v4[2], v4[3]}
}

// pinNeighbours adds the permanent entries for the namespace hosts in added: in each added
// host, one for the gateway and every namespace host of the lab; in every other namespace
// host and on the bridge, one for each added host. Entries are replaced, so pinning again
// is harmless.
func pinNeighbours(bridge string, gateway net.IP, all, added []*Host) error {
	var addedIPs, allIPs []net.IP
	for _, h := range nsHosts(added) {
		addedIPs = append(addedIPs, net.ParseIP(h.Addr))
	}
	if len(addedIPs) == 0 {
		return nil
	}
	allIPs = append(allIPs, gateway)
	for _, h := range nsHosts(all) {
		allIPs = append(allIPs, net.ParseIP(h.Addr))
	}
	isAdded := map[*Host]bool{}
	for _, h := range added {
		isAdded[h] = true
	}
	for _, h := range nsHosts(all) {
		want := addedIPs
		if isAdded[h] {
			want = allIPs
		}
		if err := pinInNetns(h.st.Netns, "eth0", net.ParseIP(h.Addr), want); err != nil {
			return fmt.Errorf("%s: pinning neighbours: %w", h.Name, err)
		}
	}
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", bridge, err)
	}
	return pinOn(&netlink.Handle{}, br.Attrs().Index, nil, addedIPs) // the root namespace
}

// nsHosts are the namespace hosts of hs (not Debian containers).
func nsHosts(hs []*Host) []*Host {
	var out []*Host
	for _, h := range hs {
		if h.ct == nil {
			out = append(out, h)
		}
	}
	return out
}

// pinInNetns adds permanent entries for ips (but self) on link in the named namespace.
func pinInNetns(ns, link string, self net.IP, ips []net.IP) error {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(link)
	if err != nil {
		return err
	}
	return pinOn(h, l.Attrs().Index, self, ips)
}

// pinOn adds permanent entries for ips (but self) on the link with index idx through h.
func pinOn(h *netlink.Handle, idx int, self net.IP, ips []net.IP) error {
	for _, ip := range ips {
		if ip.Equal(self) {
			continue
		}
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: ip, HardwareAddr: macOf(ip)}
		if err := h.NeighSet(n); err != nil {
			return fmt.Errorf("%s: %w", ip, err)
		}
	}
	return nil
}
