package lxdclient

import (
	"os"
	"strings"
	"testing"

	"orch/integration/agenttest"
)

// TestExplore (LXDCLIENT_EXPLORE=1) runs the commands of $LXDCLIENT_CMDS (one per line)
// and logs what lxc said ($IMAGE stands for a busybox image tarball): a tool to see what
// the real client does, not a test.
func TestExplore(t *testing.T) {
	if os.Getenv("LXDCLIENT_EXPLORE") == "" {
		t.Skip("LXDCLIENT_EXPLORE unset")
	}
	ms := StartCluster(t, 3)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])
	for _, line := range strings.Split(os.Getenv("LXDCLIENT_CMDS"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.Contains(line, "$IMAGE") {
			xz, _ := agenttest.BusyboxTarballs(t, 0)
			line = strings.ReplaceAll(line, "$IMAGE", xz)
		}
		r := c.Run(strings.Fields(line)...)
		t.Logf("\n$ lxc %s\n[exit %d]\n%s%s", line, r.Code, r.Stdout, r.Stderr)
	}
}
