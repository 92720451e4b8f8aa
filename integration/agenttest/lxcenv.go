package agenttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"orch/modules/lxc"
	"orch/nodeagent/api"
)

// NeedLXC skips unless the test runs as root with LXC's tools and a static busybox.
func NeedLXC(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to run LXC containers")
	}
	for _, tool := range []string{"lxc-create", "lxc-start", "lxc-attach", "lxc-stop", "lxc-destroy", "lxc-info", "lxc-ls", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s not found: install lxc (apt-get install lxc)", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		tb.Skip("no /bin/busybox: install busybox-static")
	}
}

// TestBridge makes a bridge without addresses for the containers' eth0 (no traffic leaves
// it) and removes it in Cleanup; tag keeps the bridges of parallel test binaries apart.
func TestBridge(tb testing.TB, tag string) string {
	tb.Helper()
	name := fmt.Sprintf("orch%s%d", tag, os.Getpid()%100000)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(br); err != nil {
		tb.Fatalf("bridge %s: %v", name, err)
	}
	tb.Cleanup(func() { _ = netlink.LinkDel(br) })
	if err := netlink.LinkSetUp(br); err != nil {
		tb.Fatal(err)
	}
	return name
}

// BusyboxTarballs builds the busybox image with scripts/mkimage.sh, then n variants of it
// (each with its own /etc/variant, so each has its own fingerprint), as .tar.gz files.
func BusyboxTarballs(tb testing.TB, n int) (xz string, variants []string) {
	tb.Helper()
	root, err := ModuleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	xz = filepath.Join(dir, "busybox.tar.xz")
	if b, err := exec.Command(filepath.Join(root, "scripts/mkimage.sh"), xz).CombinedOutput(); err != nil {
		tb.Fatalf("mkimage.sh: %v: %s", err, b)
	}
	fs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(fs, 0o755); err != nil {
		tb.Fatal(err)
	}
	runTool(tb, "tar", "--numeric-owner", "-xpf", xz, "-C", fs)
	for i := range n {
		if err := os.WriteFile(filepath.Join(fs, "etc", "variant"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			tb.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("variant%d.tar.gz", i))
		runTool(tb, "tar", "--numeric-owner", "-czf", out, "-C", fs, ".")
		variants = append(variants, out)
	}
	return xz, variants
}

// CleanupContainers kills and destroys every container under the agents' directories
// (a killed daemon leaves its containers running), before the directories go.
func CleanupContainers(tb testing.TB, ms []*Agent) {
	tb.Cleanup(func() {
		for _, a := range ms {
			lxcpath := filepath.Join(a.Dir, "containers")
			out, _ := exec.Command("lxc-ls", "-P", lxcpath, "-1").Output()
			for _, n := range strings.Fields(string(out)) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_ = exec.CommandContext(ctx, "lxc-stop", "-k", "-n", n, "-P", lxcpath).Run()
				_ = lxc.UnmountAll(filepath.Join(lxcpath, n)) // its shmounts directory is a mount
				_ = exec.CommandContext(ctx, "lxc-destroy", "-n", n, "-P", lxcpath).Run()
				cancel()
			}
			_ = lxc.UnmountAll(lxcpath)
		}
	})
}

// FormInstanceCluster starts n members with a default profile (root disk on pool
// "default", eth0 on bridge) and a short offline threshold.
func FormInstanceCluster(tb testing.TB, n int, bridge string) []*Agent {
	tb.Helper()
	ms := make([]*Agent, n)
	for i := range ms {
		ms[i] = New(tb, fmt.Sprintf("node%d", i+1), NewAddr(tb))
	}
	CleanupContainers(tb, ms) // registered after the agents: runs before their directories go
	for _, a := range ms {
		a.Start()
	}
	Bootstrap(tb, ms[0], api.Preseed{
		Config:       map[string]string{"cluster.offline_threshold": "4", "cluster.images_minimal_replica": "1"},
		StoragePools: []api.StoragePool{{Name: "default", Driver: "dir"}},
		Profiles: []api.Profile{{Name: "default", Devices: map[string]map[string]string{
			"root": {"path": "/", "pool": "default", "type": "disk"},
			"eth0": {"name": "eth0", "nictype": "bridged", "parent": bridge, "type": "nic"},
		}}},
	})
	for _, a := range ms[1:] {
		JoinWithToken(tb, ms[0], a)
	}
	return ms
}

// runTool runs a command and fails the test with its output when it fails.
func runTool(tb testing.TB, name string, args ...string) {
	tb.Helper()
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, b)
	}
}
