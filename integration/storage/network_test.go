package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"gopkg.in/yaml.v3"

	"orch/integration/agenttest"
	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// netlinkOf is a handle in the member's network namespace.
func netlinkOf(t *testing.T, m *agenttest.HostAgent) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPid(m.PID())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func hasTable(m *agenttest.HostAgent, table string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := m.Host.Exec(ctx, "nft", "list", "table", "ip", table)
	return err == nil
}

func dnsmasqPID(m *agenttest.HostAgent, network string) int {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "networks", network, "dnsmasq.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func mustYAML(t *testing.T, v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func networks(t *testing.T, m *agenttest.HostAgent) map[string]api.NetworkInfo {
	t.Helper()
	var ns []api.NetworkInfo
	if err := json.Unmarshal([]byte(m.MustRun("", "network", "list", "--format", "json")), &ns); err != nil {
		t.Fatal(err)
	}
	out := map[string]api.NetworkInfo{}
	for _, n := range ns {
		out[n.Name] = n
	}
	return out
}

// TestBridgesAcrossMembers runs three members in lab hosts: a preseed network (auto
// address, NAT) is created on the bootstrap member and by each joiner; a network defined
// per member with its external interface is refused while a definition is missing, then
// created everywhere; dnsmasq on a member's bridge leases an address to busybox udhcpc in
// another namespace; deleting leaves no bridge, nft table or dnsmasq on any member.
func TestBridgesAcrossMembers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"dnsmasq", "nft", "busybox", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install dnsmasq-base, nftables, busybox-static and util-linux", tool)
		}
	}
	l := lab.New(t, 3)
	var ms []*agenttest.HostAgent
	for i, h := range l.Hosts() {
		ms = append(ms, agenttest.StartInHost(t, h, fmt.Sprintf("m%d", i+1)))
	}
	boot := api.Preseed{
		Config:   map[string]string{"core.https_address": ms[0].Host.Addr + ":8443"},
		Networks: []api.Network{{Name: "orchpre", Type: "bridge", Config: map[string]string{"ipv4.address": "auto", "ipv4.nat": "true"}}},
		Cluster:  &api.ClusterPut{Enabled: true, ServerName: "m1"},
	}
	ms[0].MustRun(mustYAML(t, boot), "init", "--preseed")
	for _, m := range ms[1:] {
		tok := strings.TrimSpace(ms[0].MustRun("", "cluster", "add", m.Name))
		p := api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: m.Name, ServerAddress: m.Host.Addr + ":8443", ClusterToken: tok}}
		m.MustRun(mustYAML(t, p), "init", "--preseed")
	}
	wait.For(t, 30*time.Second, "preseed network on every member", func() error {
		n := networks(t, ms[2])["orchpre"]
		if n.Status != api.StatusCreated || len(n.Locations) != 3 {
			return fmt.Errorf("orchpre = %+v", n)
		}
		for _, m := range ms {
			if _, err := netlinkOf(t, m).LinkByName("orchpre"); err != nil || !hasTable(m, "orch_orchpre") || dnsmasqPID(m, "orchpre") == 0 {
				return fmt.Errorf("%s: bridge %v, table %v, dnsmasq %d", m.Name, err, hasTable(m, "orch_orchpre"), dnsmasqPID(m, "orchpre"))
			}
		}
		return nil
	})

	// An external interface on each member: vext0, whose peer vcli0 a DHCP client uses.
	for _, m := range ms {
		h := netlinkOf(t, m)
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vext0"}, PeerName: "vcli0"}); err != nil {
			t.Fatal(err)
		}
	}
	wantLabFail(t, ms[0].Run("", "network", "create", "orchbr1", "ipv4.nat=true", "--target", "m1"), `"ipv4.nat" is not node-specific`)
	for _, m := range ms[:2] {
		ms[0].MustRun("", "network", "create", "orchbr1", "bridge.external_interfaces=vext0", "--target", m.Name)
	}
	wantLabFail(t, ms[1].Run("", "network", "create", "orchbr1", "ipv4.address=auto", "ipv4.nat=true"), "not defined on member(s) m3")
	for _, m := range ms {
		if _, err := netlinkOf(t, m).LinkByName("orchbr1"); err == nil {
			t.Fatalf("%s: bridge made by a refused create", m.Name)
		}
	}
	ms[2].MustRun("", "network", "create", "orchbr1", "bridge.external_interfaces=vext0", "--target", "m3")
	ms[1].MustRun("", "network", "create", "orchbr1", "ipv4.address=auto", "ipv4.nat=true")
	n := networks(t, ms[0])["orchbr1"]
	_, subnet, err := net.ParseCIDR(n.Config["ipv4.address"])
	if n.Status != api.StatusCreated || err != nil {
		t.Fatalf("orchbr1 = %+v", n)
	}
	for _, m := range ms {
		h := netlinkOf(t, m)
		br, err := h.LinkByName("orchbr1")
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if ext, err := h.LinkByName("vext0"); err != nil || ext.Attrs().MasterIndex != br.Attrs().Index {
			t.Fatalf("%s: vext0 not attached to orchbr1", m.Name)
		}
	}

	lease := dhcpFrom(t, ms[1], "vcli0")
	if !subnet.Contains(net.ParseIP(lease)) {
		t.Fatalf("lease %s not in %s", lease, subnet)
	}

	pids := map[string]int{}
	for _, m := range ms {
		for _, nw := range []string{"orchpre", "orchbr1"} {
			pids[m.Name+"/"+nw] = dnsmasqPID(m, nw)
		}
	}
	ms[2].MustRun("", "network", "delete", "orchbr1")
	ms[0].MustRun("", "network", "delete", "orchpre")
	for _, m := range ms {
		h := netlinkOf(t, m)
		for _, nw := range []string{"orchpre", "orchbr1"} {
			if _, err := h.LinkByName(nw); err == nil {
				t.Errorf("%s: bridge %s left", m.Name, nw)
			}
			if hasTable(m, "orch_"+nw) {
				t.Errorf("%s: nft table of %s left", m.Name, nw)
			}
			if pid := pids[m.Name+"/"+nw]; pid != 0 && syscall.Kill(pid, 0) == nil {
				t.Errorf("%s: dnsmasq of %s (pid %d) left", m.Name, nw, pid)
			}
		}
	}
	if len(networks(t, ms[0])) != 0 {
		t.Fatal("networks still listed")
	}
}

func wantLabFail(t *testing.T, r agenttest.Result, want string) {
	t.Helper()
	if r.Code == 0 || !strings.Contains(r.Stderr, want) {
		t.Fatalf("exit %d, stderr %q; want an error containing %q", r.Code, r.Stderr, want)
	}
}

// dhcpFrom moves iface of member m into a new namespace and runs busybox udhcpc there;
// it returns the leased address. The namespace is deleted in Cleanup.
func dhcpFrom(t *testing.T, m *agenttest.HostAgent, iface string) string {
	t.Helper()
	name := fmt.Sprintf("orchdhcp%d", os.Getpid()%100000)
	func() {
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
			panic(err)
		}
	}()
	t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	target, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	h := netlinkOf(t, m)
	l, err := h.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetNsFd(l, int(target)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+name, "sh", "-c",
		"ip link set "+iface+" up && busybox udhcpc -f -q -n -t 10 -T 1 -i "+iface+" -s /bin/true").CombinedOutput()
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 3 && strings.Contains(line, "lease of") {
			for i, w := range f {
				if w == "of" && i+1 < len(f) {
					return f[i+1]
				}
			}
		}
	}
	t.Fatalf("no lease in udhcpc output:\n%s", out)
	return ""
}
