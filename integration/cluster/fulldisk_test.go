package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// smallDiskMiB is the size of the leader's agent filesystem: raft-wal preallocates its
// 8 MiB log segments, the rest is for the databases until the test fills it.
const smallDiskMiB = 112

// fillDisk grows a filler file in dir, a MiB at a time, until the filesystem refuses more,
// and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var size int64
	for {
		err := syscall.Fallocate(int(f.Fd()), 0, size, 1<<20)
		if errors.Is(err, syscall.ENOSPC) {
			return path
		}
		if err != nil {
			t.Fatalf("fallocate in %s: %v", path, err)
		}
		size += 1 << 20
	}
}

// writeLog is what the writers of the full-disk test saw: the keys acknowledged, the keys
// whose write failed with a definite error, and the errors.
type writeLog struct {
	mu        sync.Mutex
	acked     map[string]string
	refused   map[string]string // key -> error: the write must not have happened
	ambiguous int
	lastOK    time.Time
	firstErr  time.Time
}

// ambiguousWrite reports whether an error leaves the outcome of a write open.
func ambiguousWrite(err error) bool {
	msg := err.Error()
	for _, s := range []string{"outcome unknown", "may or may not", "may still", "deadline exceeded", "EOF", "connection reset"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// record notes one write's result.
func (w *writeLog) record(key, val string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
		w.acked[key] = val
		w.lastOK = time.Now()
	case ambiguousWrite(err):
		w.ambiguous++
	default:
		w.refused[key] = err.Error()
	}
	if err != nil && w.firstErr.IsZero() {
		w.firstErr = time.Now()
	}
}

// TestFullDiskOnLeader: the leader's agent directory fills up under write load. Its
// database breaks; it must hand leadership over, so writes through another member succeed
// again within seconds; no write that was committed is reported as a plain failure; after
// space is freed and it restarts, its replica catches up with no divergence.
func TestFullDiskOnLeader(t *testing.T) {
	n1 := agenttest.New(t, "node1", agenttest.NewAddr(t))
	agenttest.MountSmallDisk(t, n1, smallDiskMiB)
	n1.Start()
	ms := []*agenttest.Agent{n1, agenttest.Start(t, "node2", agenttest.NewAddr(t)), agenttest.Start(t, "node3", agenttest.NewAddr(t))}
	agenttest.Form(t, ms)
	if l := agenttest.LeaderOf(t, ms); l != n1 {
		t.Fatalf("leader is %s, want node1 (the bootstrap member)", l.Name)
	}

	w, stop := writeUntilCancelled(t, ms[1:])
	filler := fillDisk(t, n1.Dir)
	filled := time.Now()

	var newLeader *agenttest.Agent
	wait.For(t, 20*time.Second, "node1's database breaking and another member leading", func() error {
		list, err := agenttest.ListMembers(ms[1])
		if err != nil {
			return err
		}
		for name, r := range agenttest.RoleMap(list) {
			if strings.HasPrefix(r, api.RoleDatabaseLeader) && name != n1.Name {
				newLeader = agenttest.ByName(ms, name)
				return nil
			}
		}
		return fmt.Errorf("roles %v", agenttest.RoleMap(list))
	})
	// Writes through the others succeed again within a few seconds of the disk filling.
	wait.For(t, 15*time.Second, "a write acknowledged after the new leader took over", func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.lastOK.After(filled) && !w.firstErr.IsZero() && w.lastOK.After(w.firstErr) {
			return nil
		}
		return fmt.Errorf("last acknowledged %s, first error %s (disk filled %s)",
			w.lastOK.Format(time.StampMilli), w.firstErr.Format(time.StampMilli), filled.Format(time.StampMilli))
	})
	w.mu.Lock()
	t.Logf("disk full at %s, first error %s after, writes acknowledged again %s after; new leader %s",
		filled.Format(time.StampMilli), w.firstErr.Sub(filled).Round(time.Millisecond),
		w.lastOK.Sub(filled).Round(time.Millisecond), newLeader.Name)
	w.mu.Unlock()
	if r := n1.Run("cluster", "list"); !strings.Contains(r.Stdout+r.Stderr, "node1") {
		t.Logf("node1: cluster list: %s %s", r.Stdout, r.Stderr)
	}

	stop()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	n1.Kill()
	n1.Start()
	st := w.checkReplicated(t, ms, ms[1], "after-restart")
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, e := range w.refused {
		if _, ok := st.user[k]; ok {
			t.Errorf("write %s was reported as failed (%s) but it was committed", k, e)
		}
	}
	t.Logf("%d writes acknowledged, %d refused (not applied), %d with outcome unknown", len(w.acked), len(w.refused), w.ambiguous)
}

// checkReplicated, once the writers stopped, writes user.marker=marker through via, waits
// for the replicas of ms to settle and checks they hold it and every acknowledged write;
// it returns the settled state.
func (w *writeLog) checkReplicated(t *testing.T, ms []*agenttest.Agent, via *agenttest.Agent, marker string) replicaState {
	t.Helper()
	if err := via.Client().PatchConfig(context.Background(), map[string]string{"user.marker": marker}, ""); err != nil {
		t.Fatalf("%s: write %s: %v", via.Name, marker, err)
	}
	st := settledReplicas(t, ms, nil)
	if st.user["user.marker"] != marker {
		t.Fatalf("replicas lack the last write: %v", st.user["user.marker"])
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, v := range w.acked {
		if st.user[k] != v {
			t.Errorf("acknowledged write %s is missing from the replicas", k)
		}
	}
	return st
}

// writeUntilCancelled keeps PATCHing new 24 KiB user.* keys through each of vias until
// stop (or the test's end), records every outcome in the returned log, and returns once 10
// writes were acknowledged (before a disk is filled under them). stop returns once every
// writer is done.
func writeUntilCancelled(t *testing.T, vias []*agenttest.Agent) (w *writeLog, stop func()) {
	t.Helper()
	w = &writeLog{acked: map[string]string{}, refused: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	val := strings.Repeat("v", 24<<10)
	for _, via := range vias {
		wg.Add(1)
		go func(via *agenttest.Agent) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("user.%s-%d", via.Name, i)
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := via.Client().PatchConfig(cctx, map[string]string{key: val}, "")
				cancel()
				if ctx.Err() == nil {
					w.record(key, val, err)
				}
			}
		}(via)
	}
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)

	wait.For(t, 10*time.Second, "writes acknowledged before the disk fills", func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.acked) < 10 {
			return fmt.Errorf("%d acknowledged", len(w.acked))
		}
		return nil
	})
	return w, stop
}
