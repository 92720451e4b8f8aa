package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestRaftTimingSettings: the raft timings are cluster settings. A combination raft would
// refuse and a value that is not a duration are refused naming the key; a valid change
// reaches every member, which applies it to its running raft (its log says so); and it takes
// effect: with a 3 s heartbeat timeout a frozen leader (SIGSTOP: silent, so that only the
// heartbeat timeout can tell; a killed one is replaced at once whatever the timings) is not
// replaced before 3 s, where the default (800 ms) replaces it in about one second.
func TestRaftTimingSettings(t *testing.T) {
	ms := formDefaultRaft(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := ms[0].Client()
	for _, bad := range []map[string]string{
		{"cluster.raft_heartbeat_timeout": "fast"},
		{"cluster.raft_heartbeat_timeout": "2s"},    // above the election timeout (800ms)
		{"cluster.raft_heartbeat_timeout": "300ms"}, // below the leader lease (790ms)
	} {
		err := cl.PatchConfig(ctx, bad, "")
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != http.StatusBadRequest || !strings.Contains(ae.Message, "cluster.raft_") {
			t.Errorf("PATCH %v: %v, want 400 naming the key", bad, err)
		}
	}
	set := map[string]string{"cluster.raft_heartbeat_timeout": "3s", "cluster.raft_election_timeout": "3s", "cluster.raft_leader_lease_timeout": "2s"}
	if err := cl.PatchConfig(ctx, set, ""); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		wait.For(t, 30*time.Second, m.Name+" applying the raft timings", logSays(m, "raft timings applied", "heartbeat=3s"))
	}
	leader := agenttest.LeaderOf(t, ms)
	via := otherThan(ms, leader)
	start := time.Now()
	if err := syscall.Kill(leader.PID(), syscall.SIGSTOP); err != nil {
		t.Fatalf("%s: SIGSTOP: %v", leader.Name, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(leader.PID(), syscall.SIGCONT) })
	wait.ForEvery(t, 30*time.Second, pollEvery, "a new leader", newLeader(via, leader.Name))
	took := time.Since(start)
	t.Logf("a new leader answered %v after the leader froze", took.Round(time.Millisecond))
	if took < 3*time.Second {
		t.Errorf("a new leader answered %v after the leader froze: the 3 s heartbeat timeout is not in effect", took)
	}
}

// logSays is a wait condition: the member's log has a line holding every one of parts.
func logSays(m *agenttest.Agent, parts ...string) func() error {
	return func() error {
		b, err := os.ReadFile(m.LogPath)
		if err != nil {
			return err
		}
	lines:
		for _, l := range strings.Split(string(b), "\n") {
			for _, p := range parts {
				if !strings.Contains(l, p) {
					continue lines
				}
			}
			return nil
		}
		return fmt.Errorf("no line with %q in %s", parts, m.LogPath)
	}
}

// newLeader is a wait condition: via lists a leader other than old.
func newLeader(via *agenttest.Agent, old string) func() error {
	return func() error {
		list, err := agenttest.ListMembers(via)
		if err != nil {
			return err
		}
		for _, m := range list {
			for _, r := range m.Roles {
				if r == api.RoleDatabaseLeader && m.ServerName != old {
					return nil
				}
			}
		}
		return fmt.Errorf("no leader other than %s yet", old)
	}
}
