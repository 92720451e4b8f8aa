package lxdclient

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

	"orch/integration/agenttest"
	"orch/nodeagent/api"
)

// NeedContainers skips the test unless LXC containers can run here (root, the lxc tools,
// busybox-static), as the instance tests of integration/instances need.
func NeedContainers(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to run LXC containers")
	}
	for _, tool := range []string{"lxc-create", "lxc-start", "lxc-attach", "lxc-stop", "lxc-destroy", "lxc-ls", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s not found: install lxc (scripts/install-deps.sh)", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		tb.Skip("no /bin/busybox: install busybox-static")
	}
}

// StartInstanceCluster is StartCluster for tests that run containers: the members have a
// "default" dir pool and a default profile (root disk on it, eth0 on a bridge of the test
// without addresses, so no traffic leaves it), and their containers are stopped and
// destroyed when the test ends.
func StartInstanceCluster(tb testing.TB, n int) []*agenttest.Agent {
	tb.Helper()
	bridge := testBridge(tb)
	ms := make([]*agenttest.Agent, n)
	for i := range ms {
		ms[i] = agenttest.New(tb, fmt.Sprintf("node%d", i+1), agenttest.NewAddr(tb))
	}
	cleanupContainers(tb, ms) // registered after the agents: runs before their directories go
	for _, a := range ms {
		a.Start()
	}
	agenttest.Bootstrap(tb, ms[0], api.Preseed{
		StoragePools: []api.StoragePool{{Name: "default", Driver: "dir"}},
		Profiles: []api.Profile{{Name: "default", Devices: map[string]map[string]string{
			"root": {"path": "/", "pool": "default", "type": "disk"},
			"eth0": {"name": "eth0", "nictype": "bridged", "parent": bridge, "type": "nic"},
		}}},
	})
	for _, a := range ms[1:] {
		agenttest.JoinWithToken(tb, ms[0], a)
	}
	return ms
}

// testBridge makes a bridge without addresses and removes it when the test ends.
func testBridge(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("lxdcl%d", os.Getpid()%100000)
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

// cleanupContainers stops and destroys the members' containers when the test ends.
func cleanupContainers(tb testing.TB, ms []*agenttest.Agent) {
	tb.Cleanup(func() {
		for _, a := range ms {
			lxcpath := filepath.Join(a.Dir, "containers")
			out, _ := exec.Command("lxc-ls", "-P", lxcpath, "-1").Output()
			for _, n := range strings.Fields(string(out)) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_ = exec.CommandContext(ctx, "lxc-stop", "-k", "-n", n, "-P", lxcpath).Run()
				_ = exec.CommandContext(ctx, "lxc-destroy", "-n", n, "-P", lxcpath).Run()
				cancel()
			}
		}
	})
}

// BusyboxImage builds the busybox image tarball (scripts/mkimage.sh) in a temporary
// directory and returns its path.
func BusyboxImage(tb testing.TB) string {
	tb.Helper()
	root, err := agenttest.ModuleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	xz := filepath.Join(tb.TempDir(), "busybox.tar.xz")
	if b, err := exec.Command(filepath.Join(root, "scripts/mkimage.sh"), xz).CombinedOutput(); err != nil {
		tb.Fatalf("mkimage.sh: %v: %s", err, b)
	}
	return xz
}
