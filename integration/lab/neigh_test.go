package lab

import (
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestNeighboursPinned: after hosts talk to each other, to the gateway and to the root
// namespace, every neighbour a namespace host and the bridge hold for the lab is a
// permanent entry (no dynamic one, which would count in the kernel's table shared by every
// namespace), including for hosts added later, and the pinned addresses are right: the
// connections succeed.
func TestNeighboursPinned(t *testing.T) {
	l := New(t, 2)
	if _, err := l.AddHosts(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	hosts := l.Hosts()
	for _, from := range hosts {
		for _, to := range append([]string{l.Gateway()}, addrs(hosts)...) {
			if to == from.Addr {
				continue
			}
			// sshd listens on every host; the gateway (root namespace) answers a refusal,
			// which needs a resolved neighbour too.
			script := "exec 3<>/dev/tcp/" + to + "/22 && echo open || true"
			if out, err := from.Exec(t.Context(), "bash", "-c", script); err != nil || (to != l.Gateway() && !strings.Contains(string(out), "open")) {
				t.Errorf("%s → %s:22: %q %v", from.Name, to, out, err)
			}
		}
		mustSSH(t, l, from.Name, "true")
	}
	for _, h := range hosts {
		checkPermanent(t, h.Name, neighboursIn(t, h.st.Netns, "eth0"), append([]string{l.Gateway()}, addrs(hosts)...), h.Addr)
	}
	br, err := netlink.LinkByName(l.st.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netlink.NeighList(br.Attrs().Index, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	checkPermanent(t, "bridge", ns, addrs(hosts), "")
}

func addrs(hs []*Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Addr)
	}
	return out
}

func neighboursIn(t *testing.T, ns, link string) []netlink.Neigh {
	t.Helper()
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.NeighList(l.Attrs().Index, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPermanent fails unless every entry for a unicast address is permanent with the
// lab's MAC of its address, and each of want (but self) has one.
func checkPermanent(t *testing.T, where string, got []netlink.Neigh, want []string, self string) {
	t.Helper()
	seen := map[string]bool{}
	for _, n := range got {
		if n.IP.IsMulticast() {
			continue // IGMP's, NOARP: not counted in the shared table either
		}
		if n.State != netlink.NUD_PERMANENT || n.HardwareAddr.String() != macOf(n.IP).String() {
			t.Errorf("%s: neighbour %s %s state %#x: want a permanent %s", where, n.IP, n.HardwareAddr, n.State, macOf(n.IP))
		}
		seen[n.IP.String()] = true
	}
	for _, w := range want {
		if w != self && !seen[w] {
			t.Errorf("%s: no neighbour entry for %s", where, net.ParseIP(w))
		}
	}
}
