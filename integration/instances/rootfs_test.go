package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// dhcpScript configures eth0 from busybox udhcpc's environment (the image has no default
// script): the lease's address and prefix, and the default route.
const dhcpScript = `#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	[ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
	;;
esac
exit 0
`

// needRootfsLab skips unless LXC, btrfs, dnsmasq and the lab's tools are here.
func needRootfsLab(t *testing.T) {
	t.Helper()
	needLXC(t)
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install btrfs-progs and dnsmasq-base", tool)
		}
	}
	lab.Require(t)
}

// TestRootfsOnPoolAndEth0OnNetwork runs three members in lab hosts with a btrfs pool (loop
// files) and a managed network (created through the cluster flow, DHCP on) in the default
// profile. A launched busybox container's root filesystem is a btrfs subvolume of its
// owner's pool, its eth0 gets a lease from the owner's dnsmasq and `list` shows it; the
// pool cannot be deleted while it holds the container; deleting the container removes the
// subvolume. Launches are refused naming the network and member when the network is not
// created there, and a launch that fails after its root disk was made leaves nothing.
func TestRootfsOnPoolAndEth0OnNetwork(t *testing.T) {
	needRootfsLab(t)
	xz, _ := busyboxTarballs(t, 0)
	l := lab.New(t, 3)
	var ms []*agenttest.HostAgent
	for i, h := range l.Hosts() {
		ms = append(ms, agenttest.StartInHost(t, h, fmt.Sprintf("rfs%d", i+1)))
	}
	m1, m2 := ms[0], ms[1]
	boot := api.Preseed{
		Config:       map[string]string{"core.https_address": m1.Host.Addr + ":8443", "cluster.images_minimal_replica": "1"},
		StoragePools: []api.StoragePool{{Name: "default", Driver: "btrfs", Config: map[string]string{"size": "512MiB"}}},
		Profiles: []api.Profile{{Name: "default", Devices: map[string]map[string]string{
			"root": {"path": "/", "pool": "default", "type": "disk"},
		}}},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: m1.Name},
	}
	m1.MustRun(agenttest.PreseedYAML(t, boot), "init", "--preseed")
	for _, m := range ms[1:] {
		tok := strings.TrimSpace(m1.MustRun("", "cluster", "add", m.Name))
		p := api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: m.Name, ServerAddress: m.Host.Addr + ":8443", ClusterToken: tok}}
		m.MustRun(agenttest.PreseedYAML(t, p), "init", "--preseed")
	}
	poolCreatedEverywhere(t, m1, "default", ms)
	for _, m := range ms {
		m1.MustRun("", "network", "create", "orchinst", "--target", m.Name)
	}
	m2.MustRun("", "network", "create", "orchinst", "ipv4.address=auto")
	m1.MustRun("description: btrfs root, eth0 on orchinst\ndevices:\n"+
		"  root: {path: /, pool: default, type: disk}\n"+
		"  eth0: {name: eth0, network: orchinst, type: nic}\n", "profile", "edit", "default")
	m1.MustRun("", "image", "import", xz, "--alias", "busybox")

	m1.MustRun("", "launch", "busybox", "c1", "--target", m2.Name)
	vol := "/var/lib/nodeagent/storage-pools/default/containers/c1"
	if out, err := m2.Exec("btrfs", "subvolume", "show", vol); err != nil {
		t.Fatalf("%s: c1's volume is not a btrfs subvolume: %v\n%s", m2.Name, err, out)
	}
	if out, _ := m2.Exec("stat", "-c", "%i", vol); strings.TrimSpace(out) != "256" {
		t.Fatalf("%s: inode of %s = %q, want 256 (a subvolume root)", m2.Name, vol, out)
	}
	if out, err := m2.Exec("lxc-info", "-n", "c1", "-P", "/var/lib/nodeagent/containers", "-s", "-H"); err != nil || strings.TrimSpace(out) != "RUNNING" {
		t.Fatalf("%s: lxc-info c1: %v %q", m2.Name, err, out)
	}

	t.Run("dhcp lease from the member's dnsmasq", func(t *testing.T) {
		var n api.NetworkInfo
		must(t, json.Unmarshal([]byte(m1.MustRun("", "network", "show", "orchinst", "--format", "json")), &n))
		_, subnet, err := net.ParseCIDR(n.Config["ipv4.address"])
		if err != nil {
			t.Fatalf("orchinst ipv4.address %q: %v", n.Config["ipv4.address"], err)
		}
		m1.MustRun(dhcpScript, "exec", "c1", "--", "sh", "-c", "cat >/tmp/dhcp.sh && chmod 755 /tmp/dhcp.sh")
		m1.MustRun("", "exec", "c1", "--", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "1", "-s", "/tmp/dhcp.sh")
		var ip string
		wait.For(t, 20*time.Second, "list showing c1's leased address", func() error {
			for _, in := range listInstances(t, m1) {
				if in.Name == "c1" && len(in.IPv4) > 0 && subnet.Contains(net.ParseIP(in.IPv4[0])) {
					ip = in.IPv4[0]
					return nil
				}
			}
			return fmt.Errorf("list: %+v", listInstances(t, m1))
		})
		out := m1.MustRun("", "list")
		if !strings.Contains(out, ip) {
			t.Fatalf("list shows no %s:\n%s", ip, out)
		}
		t.Logf("c1 leased %s in %s:\n%s", ip, subnet, out)
	})

	t.Run("container volumes", func(t *testing.T) {
		if out := m1.MustRun("", "storage", "volume", "list", "default"); strings.Contains(out, "c1") {
			t.Fatalf("storage volume list (custom volumes) shows the root disk:\n%s", out)
		}
		var vs []api.StorageVolume
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl := api.NewUnixClient(filepath.Join(m1.Dir, "unix.socket"))
		defer cl.Close()
		if _, err := cl.Call(ctx, "GET", "/1.0/storage-pools/default/volumes?type=container&recursion=1", nil, &vs, ""); err != nil {
			t.Fatal(err)
		}
		if len(vs) != 1 || vs[0].Name != "c1" || vs[0].Type != "container" || vs[0].Location != m2.Name {
			t.Fatalf("container volumes: %+v", vs)
		}
		agenttest.WantFailure(t, m1.Run("", "storage", "delete", "default"), "instance c1 (on "+m2.Name+")")
	})

	t.Run("network not created on the member", func(t *testing.T) {
		ms[2].MustRun("", "network", "create", "orchhalf", "--target", m1.Name)
		m1.MustRun("", "profile", "create", "half")
		m1.MustRun("devices:\n  root: {path: /, pool: default, type: disk}\n  eth0: {name: eth0, network: orchhalf, type: nic}\n",
			"profile", "edit", "half")
		agenttest.WantFailure(t, m1.Run("", "launch", "busybox", "nonet", "-p", "half", "--target", ms[2].Name),
			`network "orchhalf"`, "not created on member "+ms[2].Name)
		noTrace(t, m1, ms[2], "nonet")
		m1.MustRun("", "profile", "delete", "half")
	})

	t.Run("failed launch leaves nothing", func(t *testing.T) {
		m1.MustRun("", "image", "import", noInitTarball(t, xz), "--alias", "noinit")
		r := m1.Run("", "launch", "noinit", "broken", "--target", ms[2].Name)
		agenttest.WantFailure(t, r, "broken", "lxc-start")
		t.Logf("launch of an image without init: %s", strings.TrimSpace(r.Stderr))
		noTrace(t, m1, ms[2], "broken")
	})

	m1.MustRun("", "delete", "--force", "c1")
	if out, err := m2.Exec("btrfs", "subvolume", "list", "/var/lib/nodeagent/storage-pools/default"); err != nil || strings.Contains(out, "containers/c1") {
		t.Fatalf("%s: c1's subvolume after delete: %v\n%s", m2.Name, err, out)
	}
	if _, err := os.Stat(filepath.Join(m2.Dir, "storage-pools/default/containers/c1")); err == nil {
		t.Fatalf("%s: c1's volume directory left after delete", m2.Name)
	}
	noTrace(t, m1, m2, "c1")
}

// noTrace checks that instance name left nothing on m: no record, no container, no
// volume row, no volume directory.
func noTrace(t *testing.T, via, m *agenttest.HostAgent, name string) {
	t.Helper()
	for _, in := range listInstances(t, via) {
		if in.Name == name {
			t.Fatalf("%s still listed: %+v", name, in)
		}
	}
	if out, _ := m.Exec("lxc-ls", "-P", "/var/lib/nodeagent/containers", "-1"); slices.Contains(strings.Fields(out), name) {
		t.Fatalf("%s: container %s left", m.Name, name)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "storage-pools/default/containers", name)); err == nil {
		t.Fatalf("%s: root disk of %s left", m.Name, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := api.NewUnixClient(filepath.Join(via.Dir, "unix.socket"))
	defer cl.Close()
	var vs []api.StorageVolume
	if _, err := cl.Call(ctx, "GET", "/1.0/storage-pools/default/volumes?type=all&recursion=1", nil, &vs, ""); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Name == name {
			t.Fatalf("volume row of %s left: %+v", name, v)
		}
	}
}

// noInitTarball is the busybox image without /sbin/init: its containers fail to start.
func noInitTarball(t *testing.T, xz string) string {
	t.Helper()
	dir := t.TempDir()
	fs := filepath.Join(dir, "rootfs")
	must(t, os.Mkdir(fs, 0o755))
	run(t, "tar", "--numeric-owner", "-xpf", xz, "-C", fs)
	must(t, os.Remove(filepath.Join(fs, "sbin", "init")))
	out := filepath.Join(dir, "noinit.tar.gz")
	run(t, "tar", "--numeric-owner", "-czf", out, "-C", fs, ".")
	return out
}
