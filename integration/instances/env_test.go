package instances

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"orch/integration/agenttest"
	"orch/modules/image/simplestreams"
)

// needLXC skips unless LXC containers can run (agenttest.NeedLXC).
func needLXC(t *testing.T) { agenttest.NeedLXC(t) }

// testBridge makes the containers' bridge (agenttest.TestBridge).
func testBridge(t *testing.T) string { return agenttest.TestBridge(t, "it") }

// busyboxTarballs builds the busybox image and n variants (agenttest.BusyboxTarballs).
func busyboxTarballs(t *testing.T, n int) (string, []string) { return agenttest.BusyboxTarballs(t, n) }

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

// cleanupContainers destroys the agents' containers at the end (agenttest.CleanupContainers).
func cleanupContainers(t *testing.T, ms []*agenttest.Agent) { agenttest.CleanupContainers(t, ms) }

// formInstanceCluster starts n members ready for instances (agenttest.FormInstanceCluster).
func formInstanceCluster(t *testing.T, n int, bridge string) []*agenttest.Agent {
	return agenttest.FormInstanceCluster(t, n, bridge)
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
