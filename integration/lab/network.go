package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// netnsDir is where named network namespaces are bind-mounted (as by `ip netns add`).
	netnsDir = "/run/netns"
	// lockFile serialises subnet choice and user creation between labs of different
	// processes (parallel test binaries, the demo).
	lockFile = "/run/orch-lab.lock"
	// firstSubnet is where the search for a free /24 starts.
	firstSubnet = "10.201.0.0/24"
)

// withMachineLock runs fn while holding an exclusive flock shared by every lab on the machine.
func withMachineLock(fn func() error) error { return withFileLock(lockFile, fn) }

// withFileLock runs fn while holding an exclusive flock on path (created if missing).
func withFileLock(path string, fn func() error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lab lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lab lock %s: %w", path, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// createBridge picks a /24 that nothing on the machine routes yet and creates the bridge
// with the subnet's .1 address; both happen under the machine lock so two labs never pick
// the same subnet.
func createBridge(name string) (*net.IPNet, error) {
	var subnet *net.IPNet
	err := withMachineLock(func() error {
		used, err := usedNetworks()
		if err != nil {
			return err
		}
		if subnet, err = freeSubnet(used); err != nil {
			return err
		}
		return addBridge(name, gatewayOf(subnet))
	})
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	return subnet, nil
}

func addBridge(name string, addr *net.IPNet) error {
	// A bridge without an address of its own takes its lowest port's, which changes as
	// hosts come and go; the hosts' pinned entry for the gateway needs it fixed (neigh.go).
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: macOf(addr.IP)}}
	if err := netlink.LinkAdd(br); err != nil {
		return err
	}
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: addr}); err != nil {
		return err
	}
	return netlink.LinkSetUp(br)
}

// usedNetworks lists the IPv4 networks of the machine's routes and addresses.
func usedNetworks() ([]*net.IPNet, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	var used []*net.IPNet
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP.To4() != nil && !r.Dst.IP.Equal(net.IPv4zero) {
			used = append(used, r.Dst)
		}
	}
	for _, a := range addrs {
		used = append(used, a.IPNet)
	}
	return used, nil
}

// freeSubnet returns the first /24 from firstSubnet upward (10.201.0.0, 10.201.1.0, ...,
// 10.255.255.0) that overlaps none of used.
func freeSubnet(used []*net.IPNet) (*net.IPNet, error) {
	_, cand, _ := net.ParseCIDR(firstSubnet)
	ip := cand.IP.To4()
	for b := int(ip[1]); b <= 255; b++ {
		for c := 0; c <= 255; c++ {
			n := &net.IPNet{IP: net.IPv4(ip[0], byte(b), byte(c), 0).To4(), Mask: net.CIDRMask(24, 32)}
			if !overlapsAny(n, used) {
				return n, nil
			}
		}
	}
	return nil, ErrNoSubnet
}

func overlapsAny(n *net.IPNet, used []*net.IPNet) bool {
	for _, u := range used {
		if u.Contains(n.IP) || n.Contains(u.IP) {
			return true
		}
	}
	return false
}

// gatewayOf is the bridge's address in subnet: .1.
func gatewayOf(subnet *net.IPNet) *net.IPNet {
	ip := append(net.IP(nil), subnet.IP.To4()...)
	ip[3] = 1
	return &net.IPNet{IP: ip, Mask: subnet.Mask}
}

// hostAddr is host i's address with the subnet's mask: .(10+i).
func hostAddr(subnet *net.IPNet, i int) *net.IPNet {
	ip := append(net.IP(nil), subnet.IP.To4()...)
	ip[3] = byte(hostOffset + i)
	return &net.IPNet{IP: ip, Mask: subnet.Mask}
}

// createNetns creates a named network namespace (like `ip netns add`). The namespace is
// entered on a locked OS thread which then returns to the original namespace; if it cannot,
// the thread stays locked and the runtime retires it, so no other goroutine ever runs in
// the new namespace. (Merely exiting a locked goroutine is not enough: on the main thread,
// which the runtime never ends, the whole process would then appear to be in the namespace.)
func createNetns(name string) error {
	if err := withMachineLock(ensureNetnsMount); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if err == nil {
			h.Close()
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	return nil
}

// ensureNetnsMount makes /run/netns a shared mount of itself, as `ip netns add` does the
// first time it runs, while no namespace is mounted there yet. Done later by iproute2, that
// bind would stack over the namespaces mounted before it: they could then no longer be
// unmounted through their path (nor their files removed), and every host would inherit
// copies of them. Done first, iproute2 finds the mount in place and leaves it.
func ensureNetnsMount() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", netnsDir, err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err == nil {
		return nil // a mount point already (ours or iproute2's): made shared, as iproute2 does
	}
	if entries, _ := os.ReadDir(netnsDir); len(entries) > 0 {
		return nil // namespaces are mounted in the plain directory: binding now would stack
	}
	if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s on itself: %w", netnsDir, err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making %s shared: %w", netnsDir, err)
	}
	return nil
}

// deleteNetns unmounts and removes a named network namespace; a missing one is no error.
func deleteNetns(name string) error {
	p := filepath.Join(netnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns %s: unmount: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	return nil
}

// createVeth creates a veth pair: veth stays in the root namespace as a port of bridge, its
// peer becomes eth0 with addr inside the namespace ns, where loopback is brought up too.
func createVeth(veth, bridge, ns string, addr *net.IPNet) error {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("veth %s: bridge %s: %w", veth, bridge, err)
	}
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("veth %s: netns %s: %w", veth, ns, err)
	}
	defer nsh.Close()
	link := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: veth, MasterIndex: br.Attrs().Index},
		PeerName:  "eth0", PeerNamespace: netlink.NsFd(int(nsh)),
		PeerHardwareAddr: macOf(addr.IP), // what the other hosts pin (neigh.go)
	}
	if err := netlink.LinkAdd(link); err != nil {
		return fmt.Errorf("veth %s: %w", veth, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("veth %s: up: %w", veth, err)
	}
	if err := configureInside(nsh, addr); err != nil {
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	return nil
}

func configureInside(nsh netns.NsHandle, addr *net.IPNet) error {
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return err
	}
	defer h.Close()
	eth, err := h.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: addr}); err != nil {
		return fmt.Errorf("eth0 %s: %w", addr, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	return h.LinkSetUp(lo)
}

// setLinkUp sets a root-namespace link up or down.
func setLinkUp(name string, up bool) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if up {
		err = netlink.LinkSetUp(link)
	} else {
		err = netlink.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return nil
}

// linkIsUp reports whether a root-namespace link is administratively up.
func linkIsUp(name string) (bool, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return false, fmt.Errorf("link %s: %w", name, err)
	}
	return link.Attrs().Flags&net.FlagUp != 0, nil
}

// deleteLink deletes a root-namespace link; a missing one is no error.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil
		}
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("deleting link %s: %w", name, err)
	}
	return nil
}
