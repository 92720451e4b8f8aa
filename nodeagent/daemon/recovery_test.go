package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/localdb"
)

// recoveryMember is one daemon of the recovery tests, run in a directory that outlives it.
type recoveryMember struct {
	d    *Daemon
	stop func()
}

// runMember starts a daemon in dir and waits for its socket; it is stopped in cleanup
// (or earlier by stop).
func runMember(t *testing.T, dir string) *recoveryMember {
	t.Helper()
	d, err := New(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timings: fuzzTimings()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	cl := api.NewUnixClient(SocketPath(dir))
	defer cl.Close()
	wait.For(t, 10*time.Second, "the daemon's socket", func() error { _, _, err := cl.Server(ctx); return err })
	return &recoveryMember{d: d, stop: stop}
}

// bootstrapped starts a one-member cluster in a new directory with user.before=kept
// written through raft, then stops it: the files of a member that lost its quorum.
func bootstrapped(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	m := runMember(t, dir)
	cl := api.NewUnixClient(SocketPath(dir))
	defer cl.Close()
	ctx := context.Background()
	init := api.InitPost{Preseed: api.Preseed{
		Config:  map[string]string{"core.https_address": freeLoopback(t)},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: "r1"},
	}}
	if err := cl.Init(ctx, init); err != nil {
		t.Fatalf("bootstrapping r1: %v", err)
	}
	if code, msg := patchConfig(m.d, m.d.srv.Handler(), map[string]string{"user.before": "kept"}, ""); code != 200 {
		t.Fatalf("PATCH user.before: %d %s", code, msg)
	}
	// The node-local list of database members is written by the first heartbeat round;
	// a member stopped before it has none to recover from.
	wait.For(t, 10*time.Second, "r1 recorded as the database member", func() error {
		nodes, err := m.d.local.RaftNodes()
		if err != nil || len(nodes) != 1 {
			return fmt.Errorf("raft members %v, %v", nodes, err)
		}
		return nil
	})
	m.stop()
	return dir
}

// loseQuorum records in dir's node-local database two more voters that never answer
// (closed loopback ports), as if two members of three were lost for good.
func loseQuorum(t *testing.T, dir string) []api.DatabaseMember {
	t.Helper()
	ldb, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ldb.Close()
	nodes, err := ldb.RaftNodes()
	if err != nil || len(nodes) != 1 {
		t.Fatalf("raft members of r1: %v %v", nodes, err)
	}
	nodes = append(nodes, api.DatabaseMember{Name: "r2", Address: freeLoopback(t), Role: "voter"},
		api.DatabaseMember{Name: "r3", Address: freeLoopback(t), Role: "voter"})
	if err := ldb.SetRaftNodes(nodes); err != nil {
		t.Fatal(err)
	}
	return nodes
}

// The recovery of a stopped member that lost its quorum, on real raft and SQLite files:
// the plan reads the member from its files, the fencing check finds nobody running, the
// recovery backs the database up, leaves this member the only voter in a new epoch, and
// the restarted daemon leads with the data written before.
func TestRecoverFromQuorumLoss(t *testing.T) {
	dir := bootstrapped(t)
	lost := loseQuorum(t, dir)
	ldb, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanRecovery(dir, ldb)
	if err != nil {
		ldb.Close()
		t.Fatalf("planning the recovery of r1: %v", err)
	}
	if plan.Info.Member != "r1" || len(plan.Info.Members) != len(lost) || plan.Info.LastIndex == 0 {
		t.Errorf("offline view of r1: %+v; want r1, 3 raft members and a last applied index", plan.Info)
	}
	if plan.Next.Number != plan.Info.Epoch.Number+1 || plan.Next.Member != "r1" {
		t.Errorf("next epoch %+v after %+v", plan.Next, plan.Info.Epoch)
	}
	alive, err := plan.Fence(false)
	if err != nil || len(alive) != 0 {
		t.Fatalf("fencing with r2 and r3 gone: alive %v, %v; want nobody and no error", alive, err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := plan.Recover(ldb, now)
	ldb.Close()
	if err != nil {
		t.Fatalf("recovering r1: %v", err)
	}
	if want := filepath.Join(dir, "database.backup-20260102-030405"); res.Backup != want {
		t.Errorf("backup in %s, want %s", res.Backup, want)
	}
	if entries, err := os.ReadDir(res.Backup); err != nil || len(entries) == 0 {
		t.Errorf("backup %s: %d entries, %v", res.Backup, len(entries), err)
	}
	checkRecoveredLocal(t, dir, plan)

	m := runMember(t, dir)
	wait.For(t, 10*time.Second, "r1 to lead alone", func() error {
		if st := m.d.store(); st == nil || !st.IsLeader() {
			return errors.New("not the leader")
		}
		return nil
	})
	cs, err := m.d.conf.Full(context.Background())
	if err != nil || cs.Config["user.before"] != "kept" {
		t.Errorf("after recovery user.before = %q (%v), want kept", cs.Config["user.before"], err)
	}
	if e := m.d.currentEpoch(); e != plan.Next {
		t.Errorf("restarted in epoch %+v, want %+v", e, plan.Next)
	}
	wait.For(t, 10*time.Second, "the recovered flag to be cleared by the new leader", func() error {
		if v, _ := m.d.local.Get(localdb.KeyRecovered); v != "" {
			return errors.New("still set")
		}
		return nil
	})
}

// checkRecoveredLocal checks the node-local database after a recovery: this member the
// only voter, the new epoch, the flag for the first start.
func checkRecoveredLocal(t *testing.T, dir string, plan RecoveryPlan) {
	t.Helper()
	ldb, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ldb.Close()
	nodes, _ := ldb.RaftNodes()
	if len(nodes) != 1 || nodes[0].Name != "r1" || nodes[0].Address != plan.Address || nodes[0].Role != "voter" {
		t.Errorf("raft members after recovery: %+v; want r1 alone as voter at %s", nodes, plan.Address)
	}
	if e, _ := ldb.Epoch(); e != plan.Next {
		t.Errorf("epoch after recovery %+v, want %+v", e, plan.Next)
	}
	if v, _ := ldb.Get(localdb.KeyRecovered); v != "1" {
		t.Errorf("recovered flag %q, want 1", v)
	}
}

// A recovery is refused while the daemon runs, for a directory holding no member, and for
// a member that a recovery elsewhere cut off; nothing is changed.
func TestPlanRecoveryRefuses(t *testing.T) {
	t.Run("running", func(t *testing.T) {
		dir := bootstrapped(t)
		runMember(t, dir)
		ldb, err := localdb.Open(filepath.Join(dir, "local.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer ldb.Close()
		if _, err := PlanRecovery(dir, ldb); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), dir) {
			t.Errorf("recovering a running member: %v; want ErrRunning naming %s", err, dir)
		}
	})
	t.Run("no member", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := OpenLocal(dir); err == nil || !strings.Contains(err.Error(), "no agent in "+dir) {
			t.Errorf("opening an empty directory: %v; want no agent in %s", err, dir)
		}
		ldb, err := localdb.Open(filepath.Join(dir, "local.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer ldb.Close()
		if _, err := PlanRecovery(dir, ldb); !errors.Is(err, ErrNoMember) || !strings.HasPrefix(err.Error(), dir+" ") {
			t.Errorf("recovering an uninitialised directory: %v; want ErrNoMember naming %s", err, dir)
		}
	})
	t.Run("cut off", func(t *testing.T) {
		dir := bootstrapped(t)
		ldb, err := OpenLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ldb.Close()
		c := api.CutOff{Epoch: api.Epoch{Number: 9, Member: "r2"}, By: "r2"}
		if err := ldb.SetCutOff(c); err != nil {
			t.Fatal(err)
		}
		before, _ := ldb.RaftNodes()
		_, err = PlanRecovery(dir, ldb)
		if err == nil || err.Error() != "refusing to recover r1: "+c.Error() {
			t.Errorf("recovering a cut-off member: %v", err)
		}
		if after, _ := ldb.RaftNodes(); len(after) != len(before) {
			t.Errorf("a refused recovery changed the raft members: %v -> %v", before, after)
		}
	})
}
