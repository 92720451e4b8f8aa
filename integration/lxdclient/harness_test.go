package lxdclient

import (
	"strings"
	"testing"
)

// TestRemoteAddTrusted is the harness's own check: a client whose certificate was trusted
// by hand adds a member as a remote and `lxc info` says it is trusted and clustered.
func TestRemoteAddTrusted(t *testing.T) {
	NeedLXC(t)
	ms := StartCluster(t, 3)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[1])
	out := c.MustRun("info")
	for _, want := range []string{"auth: trusted", "server_clustered: true", "server_name: node2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("lxc info has no %q:\n%s", want, out)
		}
	}
	if out := c.MustRun("remote", "list"); !strings.Contains(out, "orch (current)") || !strings.Contains(out, URL(ms[1])) {
		t.Fatalf("lxc remote list:\n%s", out)
	}
}
