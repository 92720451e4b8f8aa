package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
)

// TestNoStaleReadOnACutOffMember checks that a member which cannot confirm a read index
// never answers GET /1.0 (a linearizable read, served by a follower from its own replica
// after a read index from the leader) with a value an acknowledged write replaced:
//   - a follower that missed a write (paused while it was acknowledged), then cut off from
//     both the leader and the other member: its replica still holds the old value;
//   - an old leader paused while the others elected a new leader and acknowledged a write,
//     then resumed alone: it still believes it leads.
//
// Either must refuse the read (no quorum confirms it), and serve the new value once healed.
// The mutant subtest runs the same script against an agent whose read index is local
// (jepsen_mutation_localread) and requires the stale read to be seen: the check can fail.
func TestNoStaleReadOnACutOffMember(t *testing.T) {
	t.Run("real", func(t *testing.T) {
		if stale := staleReadScript(t, agenttest.FormCluster(t, 3)); stale != "" {
			t.Error(stale)
		}
	})
	t.Run("mutant", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds a mutant agent; not in -short")
		}
		bin := filepath.Join(agenttest.BinDir(), "nodeagent-jepsen_mutation_localread")
		if err := agenttest.BuildAgent(bin, "jepsen_mutation_localread"); err != nil {
			t.Fatal(err)
		}
		ms := make([]*agenttest.Agent, 3)
		for i := range ms {
			ms[i] = agenttest.New(t, fmt.Sprintf("node%d", i+1), agenttest.NewAddr(t))
			ms[i].StartWith(bin)
		}
		agenttest.Form(t, ms)
		if stale := staleReadScript(t, ms); stale == "" {
			t.Error("a member answering reads from its own replica was not caught serving a stale read")
		}
	})
}

// staleReadScript runs both scenarios of TestNoStaleReadOnACutOffMember on ms and returns
// the first stale read seen, "" when there was none.
func staleReadScript(t *testing.T, ms []*agenttest.Agent) string {
	t.Helper()
	leader := agenttest.LeaderOf(t, ms)
	others := otherThanAll(ms, leader)
	f, g := others[0], others[1]
	paused := map[*agenttest.Agent]bool{}
	pause := func(as ...*agenttest.Agent) {
		for _, a := range as {
			if err := syscall.Kill(a.PID(), syscall.SIGSTOP); err != nil {
				t.Fatalf("%s: SIGSTOP: %v", a.Name, err)
			}
			paused[a] = true
		}
	}
	resume := func(as ...*agenttest.Agent) {
		for _, a := range as {
			_ = syscall.Kill(a.PID(), syscall.SIGCONT)
			delete(paused, a)
		}
	}
	t.Cleanup(func() {
		for a := range paused {
			resume(a)
		}
	})

	// A follower that missed a write, alone.
	waitWrite(t, leader, "user.stale", "before", 15*time.Second)
	waitRead(t, f, "user.stale", "before")
	pause(f)
	if err := patch(leader, "user.stale", "after"); err != nil {
		t.Fatalf("%s: write while %s is paused: %v", leader.Name, f.Name, err)
	}
	pause(leader, g)
	resume(f)
	if v, ok := readOnce(f, "user.stale"); ok && v != "after" {
		return fmt.Sprintf("%s, cut off after missing a write, answered user.stale=%q (acknowledged: %q)", f.Name, v, "after")
	}
	resume(leader, g)
	waitRead(t, f, "user.stale", "after")

	// An old leader, deposed while paused, resumed alone.
	pause(leader)
	next := agenttest.LeaderOf(t, others)
	waitWrite(t, next, "user.stale", "third", 15*time.Second)
	pause(others...)
	resume(leader)
	if v, ok := readOnce(leader, "user.stale"); ok && v != "third" {
		return fmt.Sprintf("%s, a deposed leader resumed alone, answered user.stale=%q (acknowledged: %q)", leader.Name, v, "third")
	}
	resume(others...)
	waitRead(t, leader, "user.stale", "third")
	return ""
}

// readOnce is one GET /1.0 through a's socket: the value of key, and whether the read
// succeeded.
func readOnce(a *agenttest.Agent, key string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, _, err := a.Client().Server(ctx)
	if err != nil {
		return "", false
	}
	return s.Config[key], true
}

// waitRead waits until GET /1.0 through a shows key = want.
func waitRead(t *testing.T, a *agenttest.Agent, key, want string) {
	t.Helper()
	wait.For(t, 20*time.Second, fmt.Sprintf("%s to read %s=%s", a.Name, key, want), func() error {
		v, ok := readOnce(a, key)
		if !ok || v != want {
			return fmt.Errorf("read %q (ok %v)", v, ok)
		}
		return nil
	})
}
