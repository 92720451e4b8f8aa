package instances

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"orch/integration/agenttest"
	"orch/modules/image/simplestreams"
	"orch/nodeagent/api"
)

// needLXC skips unless the test runs as root with LXC's tools and a static busybox.
func needLXC(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run LXC containers")
	}
	for _, tool := range []string{"lxc-create", "lxc-start", "lxc-attach", "lxc-stop", "lxc-destroy", "lxc-info", "lxc-ls", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install lxc (apt-get install lxc)", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox: install busybox-static")
	}
}

// testBridge makes a bridge without addresses for the containers' eth0 (no traffic leaves
// it) and removes it in Cleanup.
func testBridge(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("orchit%d", os.Getpid()%100000)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("bridge %s: %v", name, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	return name
}

// busyboxTarballs builds the busybox image with scripts/mkimage.sh, then n variants of it
// (each with its own /etc/variant, so each has its own fingerprint), as .tar.gz files.
func busyboxTarballs(t *testing.T, n int) (xz string, variants []string) {
	t.Helper()
	root, err := agenttest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	xz = filepath.Join(dir, "busybox.tar.xz")
	if b, err := exec.Command(filepath.Join(root, "scripts/mkimage.sh"), xz).CombinedOutput(); err != nil {
		t.Fatalf("mkimage.sh: %v: %s", err, b)
	}
	fs := filepath.Join(dir, "rootfs")
	must(t, os.Mkdir(fs, 0o755))
	run(t, "tar", "--numeric-owner", "-xpf", xz, "-C", fs)
	for i := range n {
		must(t, os.WriteFile(filepath.Join(fs, "etc", "variant"), []byte(fmt.Sprint(i)), 0o644))
		out := filepath.Join(dir, fmt.Sprintf("variant%d.tar.gz", i))
		run(t, "tar", "--numeric-owner", "-czf", out, "-C", fs, ".")
		variants = append(variants, out)
	}
	return xz, variants
}

// imageServer serves the busybox image over simplestreams on 127.0.0.1.
func imageServer(t *testing.T, rootfs string) string {
	t.Helper()
	dir := t.TempDir()
	meta := filepath.Join(t.TempDir(), "lxd.tar.xz")
	must(t, simplestreams.WriteMeta(context.Background(), meta, "x86_64", map[string]string{"os": "busybox", "description": "busybox from the test server"}))
	must(t, simplestreams.Write(dir, []simplestreams.Entry{{Aliases: []string{"busybox", "busybox/1"}, OS: "busybox",
		Release: "1", Arch: runtime.GOARCH, Version: "20260101_0000", Rootfs: rootfs, Meta: meta}}))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// cleanupContainers kills and destroys every container under the agents' directories
// (a killed daemon leaves its containers running), before the directories go.
func cleanupContainers(t *testing.T, ms []*agenttest.Agent) {
	t.Cleanup(func() {
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

// formInstanceCluster starts n members with a default profile (root disk on pool
// "default", eth0 on bridge) and a short offline threshold.
func formInstanceCluster(t *testing.T, n int, bridge string) []*agenttest.Agent {
	t.Helper()
	ms := make([]*agenttest.Agent, n)
	for i := range ms {
		ms[i] = agenttest.New(t, fmt.Sprintf("node%d", i+1), agenttest.NewAddr(t))
	}
	cleanupContainers(t, ms) // registered after the agents: runs before their directories go
	for _, a := range ms {
		a.Start()
	}
	agenttest.Bootstrap(t, ms[0], api.Preseed{
		Config:       map[string]string{"cluster.offline_threshold": "4", "cluster.images_minimal_replica": "1"},
		StoragePools: []api.StoragePool{{Name: "default", Driver: "dir"}},
		Profiles: []api.Profile{{Name: "default", Devices: map[string]map[string]string{
			"root": {"path": "/", "pool": "default", "type": "disk"},
			"eth0": {"name": "eth0", "nictype": "bridged", "parent": bridge, "type": "nic"},
		}}},
	})
	for _, a := range ms[1:] {
		agenttest.JoinWithToken(t, ms[0], a)
	}
	return ms
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, b)
	}
}
