package cluster

import (
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
)

// TestWaitreadyMeansConsistentRead: `nodeagent waitready` on a member that was just started
// returns success only once a linearizable read works, so that the next command does not
// fail with "no database leader known". A member alone without quorum is never ready; it is
// once a second member is back, and `config get` of a cluster-wide key then works at once.
func TestWaitreadyMeansConsistentRead(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	ms[0].MustRun("config", "set", "user.ready", "yes")
	for _, a := range ms {
		a.Kill()
	}

	ms[0].Launch()
	if r := ms[0].Run("waitready", "--timeout", "3"); r.Code == 0 {
		get := ms[0].Run("config", "get", "user.ready")
		t.Fatalf("%s alone (no quorum): waitready succeeded; config get then: exit %d, %q %q",
			ms[0].Name, get.Code, strings.TrimSpace(get.Stdout), strings.TrimSpace(get.Stderr))
	}

	ms[1].Launch()
	start := time.Now()
	ms[0].MustRun("waitready", "--timeout", "30")
	if got := strings.TrimSpace(ms[0].MustRun("config", "get", "user.ready")); got != "yes" {
		t.Fatalf("%s: config get user.ready right after waitready = %q, want yes", ms[0].Name, got)
	}
	t.Logf("%s ready %v after %s started", ms[0].Name, time.Since(start).Round(time.Millisecond), ms[1].Name)

	// Freshly started with quorum available: waitready then an immediate read, every time.
	for i := 0; i < 3; i++ {
		ms[1].Kill()
		ms[1].Launch()
		ms[1].MustRun("waitready", "--timeout", "30")
		if r := ms[1].Run("config", "get", "user.ready"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "yes" {
			t.Fatalf("%s restart %d: config get right after waitready: exit %d, %q %q", ms[1].Name, i+1, r.Code, r.Stdout, r.Stderr)
		}
	}
}
