package lxdclient

import (
	"testing"

	"orch/integration/agenttest"
)

// NeedContainers skips the test unless LXC containers can run here (root, the lxc tools,
// busybox-static): agenttest.NeedLXC, as the instance tests of integration/instances.
func NeedContainers(tb testing.TB) {
	tb.Helper()
	agenttest.NeedLXC(tb)
}

// StartInstanceCluster is StartCluster for tests that run containers: the members have a
// "default" dir pool and a default profile (root disk on it, eth0 on a bridge of the test
// without addresses, so no traffic leaves it), and their containers are stopped and
// destroyed when the test ends (agenttest.FormInstanceCluster).
func StartInstanceCluster(tb testing.TB, n int) []*agenttest.Agent {
	tb.Helper()
	return agenttest.FormInstanceCluster(tb, n, agenttest.TestBridge(tb, "lc"))
}

// BusyboxImage builds the busybox image tarball (scripts/mkimage.sh) in a temporary
// directory and returns its path.
func BusyboxImage(tb testing.TB) string {
	tb.Helper()
	xz, _ := agenttest.BusyboxTarballs(tb, 0)
	return xz
}
