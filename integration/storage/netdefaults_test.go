package storage

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"orch/integration/agenttest"
	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestBridgeDefaultsLikeLXD: a bridge created without ipv4 keys gets LXD's defaults
// (ipv4.address=auto resolved once for the whole cluster, ipv4.nat=true): a preseed network
// of the bootstrap member, one a joiner declares alike in its own preseed, and one made with
// the guide's `network create --target` then `network create`. Each member's bridge carries
// the address, NATs (nft table) and serves DHCP (dnsmasq). An explicit ipv4.address=none is
// kept: no address, no NAT.
func TestBridgeDefaultsLikeLXD(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	for _, tool := range []string{"dnsmasq", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install dnsmasq-base and nftables", tool)
		}
	}
	l := lab.New(t, 2)
	m1 := agenttest.StartInHost(t, l.Hosts()[0], "m1")
	m2 := agenttest.StartInHost(t, l.Hosts()[1], "m2")
	nets := []api.Network{{Name: "orchdef", Type: "bridge"}}
	m1.MustRun(mustYAML(t, api.Preseed{
		Config:   map[string]string{"core.https_address": m1.Host.Addr + ":8443"},
		Networks: nets,
		Cluster:  &api.ClusterPut{Enabled: true, ServerName: "m1"},
	}), "init", "--preseed")
	wait.For(t, 30*time.Second, "orchdef created on m1", func() error {
		if n := networks(t, m1)["orchdef"]; n.Status != api.StatusCreated {
			return fmt.Errorf("orchdef = %+v", n)
		}
		return nil
	})
	// The joiner declares the same network as the bootstrap preseed did: it matches.
	tok := strings.TrimSpace(m1.MustRun("", "cluster", "add", "m2"))
	m2.MustRun(mustYAML(t, api.Preseed{Networks: nets,
		Cluster: &api.ClusterPut{Enabled: true, ServerName: "m2", ServerAddress: m2.Host.Addr + ":8443", ClusterToken: tok}}), "init", "--preseed")

	for _, nw := range []string{"orchcli", "orchnone"} {
		for _, m := range []*agenttest.HostAgent{m1, m2} {
			m1.MustRun("", "network", "create", nw, "--target", m.Name)
		}
	}
	m2.MustRun("", "network", "create", "orchcli")
	m1.MustRun("", "network", "create", "orchnone", "ipv4.address=none")

	for _, name := range []string{"orchdef", "orchcli"} {
		var addr *net.IPNet
		wait.For(t, 30*time.Second, name+" with LXD's defaults on every member", func() error {
			n := networks(t, m2)[name]
			if n.Status != api.StatusCreated || len(n.Locations) != 2 {
				return fmt.Errorf("%s = %+v", name, n)
			}
			ip, subnet, err := net.ParseCIDR(n.Config["ipv4.address"])
			if err != nil || n.Config["ipv4.nat"] != "true" {
				return fmt.Errorf("%s config %v: want ipv4.address an address and ipv4.nat true (%v)", name, n.Config, err)
			}
			addr = &net.IPNet{IP: ip, Mask: subnet.Mask}
			for _, m := range []*agenttest.HostAgent{m1, m2} {
				if err := bridgeServes(t, m, name, addr); err != nil {
					return err
				}
			}
			return nil
		})
		t.Logf("%s: %s", name, addr)
	}
	n := networks(t, m1)["orchnone"]
	if a := n.Config["ipv4.address"]; a != "none" || n.Config["ipv4.nat"] != "" {
		t.Errorf("orchnone (ipv4.address=none) config %v: want none kept and no ipv4.nat", n.Config)
	}
	for _, m := range []*agenttest.HostAgent{m1, m2} {
		if hasTable(m, "orch_orchnone") {
			t.Errorf("%s: orchnone (ipv4.address=none) NATs", m.Name)
		}
	}
}

// bridgeServes checks member m's bridge name: it carries addr, has its NAT table and a
// running dnsmasq.
func bridgeServes(t *testing.T, m *agenttest.HostAgent, name string, addr *net.IPNet) error {
	h := netlinkOf(t, m)
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	found := false
	for _, a := range as {
		found = found || a.IPNet.String() == addr.String()
	}
	switch {
	case !found:
		return fmt.Errorf("%s: bridge %s has addresses %v, not %s", m.Name, name, as, addr)
	case !hasTable(m, "orch_"+name):
		return fmt.Errorf("%s: no nft table for %s", m.Name, name)
	case dnsmasqPID(m, name) == 0:
		return fmt.Errorf("%s: no dnsmasq for %s", m.Name, name)
	}
	return nil
}
