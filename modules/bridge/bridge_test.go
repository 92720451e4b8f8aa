package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/internal/wait"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(map[string]string{"ipv4.address": "10.9.8.1/24", "ipv4.nat": "true", "bridge.external_interfaces": "eth1, eth2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.IPv4.String() != "10.9.8.1/24" || !c.NAT || !c.DHCP || len(c.External) != 2 {
		t.Fatalf("config = %+v", c)
	}
	if r := defaultRange(c.IPv4); r[0].String() != "10.9.8.2" || r[1].String() != "10.9.8.254" {
		t.Fatalf("default range = %v", r)
	}
	for k, v := range map[string]string{"ipv4.address": "10.0.0.0/24", "ipv6.address": "10.0.0.1/24", "ipv4.nat": "maybe",
		"bridge.mtu": "9", "nosuch.key": "x", "ipv4.dhcp.ranges": "10.1.1.1-10.1.1.9"} {
		cfg := map[string]string{"ipv4.address": "10.0.0.1/24", k: v}
		if _, err := ParseConfig(cfg); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: err = %v, want ErrBadConfig naming the key", k, v, err)
		}
	}
	if err := CheckName("a-very-long-bridge-name"); !errors.Is(err, ErrBadName) {
		t.Errorf("long name: %v", err)
	}
}

func TestNATRules(t *testing.T) {
	c, _ := ParseConfig(map[string]string{"ipv4.address": "10.9.8.1/24", "ipv4.nat": "true"})
	r := natRules("br-x", c)
	for _, want := range []string{"table ip orch_br_x", "ip saddr 10.9.8.0/24 ip daddr != 10.9.8.0/24 masquerade", `iifname "br-x" accept`} {
		if !strings.Contains(r, want) {
			t.Errorf("rules lack %q:\n%s", want, r)
		}
	}
}

// TestBridgeDHCPAndCleanup makes a bridge in a fresh network namespace with NAT and
// dnsmasq, gets a lease with busybox udhcpc from a second namespace through a veth
// attached as an external interface, kills dnsmasq and sees it restarted, then deletes the
// network and finds no bridge, table or dnsmasq left.
func TestBridgeDHCPAndCleanup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"dnsmasq", "nft", "nsenter", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install dnsmasq-base, nftables, util-linux and busybox-static", tool)
		}
	}
	id := fmt.Sprintf("obr%d", rand.IntN(1e6))
	brNS, cliNS := newNetns(t, id+"b"), newNetns(t, id+"c")
	veth(t, brNS, cliNS, "ext0", "cli0")

	m, err := New(Options{Dir: t.TempDir(), NetNS: "/run/netns/" + brNS, Logger: nil})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Delete(context.Background(), "orchbr0"); m.Close() })
	auto, err := m.AutoIPv4()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := map[string]string{"ipv4.address": auto, "ipv4.nat": "true", "bridge.external_interfaces": "ext0"}
	if err := m.Create(ctx, "orchbr0", cfg); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, "orchbr0", cfg); err != nil { // idempotent, same dnsmasq
		t.Fatal(err)
	}
	if out, err := exec.Command("nsenter", "--net=/run/netns/"+brNS, "nft", "list", "table", "ip", "orch_orchbr0").CombinedOutput(); err != nil {
		t.Fatalf("nft table missing: %v %s", err, out)
	}

	lease := udhcpc(t, cliNS, "cli0")
	_, subnet, _ := net.ParseCIDR(auto)
	if !subnet.Contains(net.ParseIP(lease)) {
		t.Fatalf("lease %s not in %s", lease, subnet)
	}

	checkState(t, m, "orchbr0", auto, "ext0")

	pid := m.DnsmasqPID("orchbr0")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "dnsmasq restarted", func() error {
		if p := m.DnsmasqPID("orchbr0"); p == pid || p == 0 || syscall.Kill(p, 0) != nil {
			return fmt.Errorf("pid %d (was %d)", p, pid)
		}
		return nil
	})
	udhcpc(t, cliNS, "cli0") // the restarted dnsmasq answers too
	newPID := m.DnsmasqPID("orchbr0")

	if err := m.Delete(ctx, "orchbr0"); err != nil {
		t.Fatal(err)
	}
	h, _ := netlink.NewHandleAt(mustNS(t, brNS))
	defer h.Close()
	if _, err := h.LinkByName("orchbr0"); err == nil {
		t.Fatal("bridge left behind")
	}
	if l, err := h.LinkByName("ext0"); err != nil || l.Attrs().MasterIndex != 0 {
		t.Fatalf("external interface not released: %v", err)
	}
	if exec.Command("nsenter", "--net=/run/netns/"+brNS, "nft", "list", "table", "ip", "orch_orchbr0").Run() == nil {
		t.Fatal("nft table left behind")
	}
	wait.For(t, 5*time.Second, "dnsmasq gone", func() error {
		if syscall.Kill(newPID, 0) == nil {
			return fmt.Errorf("pid %d alive", newPID)
		}
		return nil
	})
}

func TestMissingDnsmasqNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	ns := newNetns(t, fmt.Sprintf("obr%dm", rand.IntN(1e6)))
	m, err := New(Options{Dir: t.TempDir(), NetNS: "/run/netns/" + ns})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	t.Setenv("PATH", t.TempDir())
	err = m.Create(context.Background(), "orchbr1", map[string]string{"ipv4.address": "10.77.0.1/24", "ipv4.nat": "true"})
	if !errors.Is(err, ErrMissingTool) || !strings.Contains(err.Error(), "dnsmasq-base") || !strings.Contains(err.Error(), "nftables") {
		t.Fatalf("err = %v", err)
	}
	h, _ := netlink.NewHandleAt(mustNS(t, ns))
	defer h.Close()
	if _, err := h.LinkByName("orchbr1"); err == nil {
		t.Fatal("bridge made although tools are missing")
	}
}

// udhcpc asks for a lease on iface in namespace ns and returns the address.
func udhcpc(t *testing.T, ns, iface string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+ns, "busybox", "udhcpc", "-f", "-q", "-n",
		"-t", "10", "-T", "1", "-i", iface, "-s", "/bin/true").CombinedOutput()
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		if ip := net.ParseIP(f); ip != nil && ip.To4() != nil && !strings.Contains(string(out), "from "+f) {
			return f
		}
	}
	t.Fatalf("no lease in udhcpc output:\n%s", out)
	return ""
}

// newNetns makes a named network namespace (lo up), deleted in Cleanup with whatever it holds.
func newNetns(t *testing.T, name string) string {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	if err := netns.Set(orig); err != nil {
		panic(err) // the thread would stay in the new namespace
	}
	t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	h, err := netlink.NewHandleAt(mustNS(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if lo, err := h.LinkByName("lo"); err == nil {
		_ = h.LinkSetUp(lo)
	}
	return name
}

func mustNS(t *testing.T, name string) netns.NsHandle {
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// veth makes a veth pair a (in nsA) – b (in nsB), both up.
func veth(t *testing.T, nsA, nsB, a, b string) {
	t.Helper()
	h, err := netlink.NewHandleAt(mustNS(t, nsA))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}); err != nil {
		t.Fatal(err)
	}
	peer, err := h.LinkByName(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetNsFd(peer, int(mustNS(t, nsB))); err != nil {
		t.Fatal(err)
	}
	hb, err := netlink.NewHandleAt(mustNS(t, nsB))
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	if l, err := hb.LinkByName(b); err == nil {
		_ = hb.LinkSetUp(l)
	}
}

// TestFillDefaults: LXD's creation defaults fill unset keys only.
func TestFillDefaults(t *testing.T) {
	for _, c := range []struct{ in, want map[string]string }{
		{map[string]string{}, map[string]string{"ipv4.address": "auto", "ipv4.nat": "true"}},
		{map[string]string{"ipv4.address": "none"}, map[string]string{"ipv4.address": "none"}},
		{map[string]string{"ipv4.address": "10.1.2.1/24"}, map[string]string{"ipv4.address": "10.1.2.1/24"}},
		{map[string]string{"ipv4.nat": "false"}, map[string]string{"ipv4.address": "auto", "ipv4.nat": "false"}},
	} {
		got := maps.Clone(c.in)
		FillDefaults(got)
		if !maps.Equal(got, c.want) {
			t.Errorf("FillDefaults(%v) = %v; want %v", c.in, got, c.want)
		}
	}
}

// checkState: the bridge's state (`lxc network info`) is up with its address (cidr) and
// the DHCP exchange counted, ext is attached to it, and an unknown interface is ErrNoLink.
func checkState(t *testing.T, m *Manager, name, cidr, ext string) {
	t.Helper()
	st, err := m.State(name)
	if err != nil {
		t.Fatal(err)
	}
	ip, ipnet, _ := net.ParseCIDR(cidr)
	ones, _ := ipnet.Mask.Size()
	found := false
	for _, a := range st.Addresses {
		found = found || (a.Family == "inet" && a.Address == ip.String() && a.Netmask == fmt.Sprint(ones) && a.Scope == "global")
	}
	if !found || !st.Up || st.Type != "broadcast" || st.MTU == 0 || st.Hwaddr == "" || st.PacketsReceived == 0 || st.BytesSent == 0 {
		t.Errorf("state of %s: %+v (want up, %s, counters)", name, st, cidr)
	}
	if st.Bridge == nil || !slices.Contains(st.Bridge.UpperDevices, ext) {
		t.Errorf("state of %s: bridge %+v, want %s attached", name, st.Bridge, ext)
	}
	if _, err := m.State("nosuch0"); !errors.Is(err, ErrNoLink) {
		t.Errorf("state of a missing interface: %v, want ErrNoLink", err)
	}
}
