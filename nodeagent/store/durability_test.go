package store

import (
	"context"
	"errors"
	"fmt"
	"orch/internal/wait"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadWriters writes unique keys through whichever node leads until stopped,
// recording which writes were acknowledged and which have an unknown outcome.
type loadWriters struct {
	mu        sync.Mutex
	acked     map[string]bool
	uncertain map[string]bool
	stop      chan struct{}
	wg        sync.WaitGroup
}

// startLoad starts n writer goroutines on c.
func startLoad(c *cluster, n int) *loadWriters {
	w := &loadWriters{acked: map[string]bool{}, uncertain: map[string]bool{}, stop: make(chan struct{})}
	for i := range n {
		w.wg.Add(1)
		go w.run(c, i)
	}
	return w
}

// run writes keys w<i>-<j> one after the other.
func (w *loadWriters) run(c *cluster, i int) {
	defer w.wg.Done()
	for j := 0; ; j++ {
		key := fmt.Sprintf("w%d-%d", i, j)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			done, ok := w.try(c, key)
			if done {
				w.record(key, ok)
				break
			}
			time.Sleep(5 * time.Millisecond) // no leader right now: retry
		}
	}
}

// try writes key on the current leader; done reports whether the key is
// finished with (acked or outcome unknown), ok whether it was acknowledged.
func (w *loadWriters) try(c *cluster, key string) (done, ok bool) {
	for _, s := range c.stores() {
		if !s.IsLeader() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.Exec(ctx, stmt("INSERT INTO log (k) VALUES (?)", key))
		cancel()
		switch {
		case err == nil:
			return true, true
		case errors.Is(err, ErrNotLeader):
			return false, false // definitely not applied: retry the same key
		default:
			return true, false // closed, leadership lost, timeout: unknown
		}
	}
	return false, false
}

// record notes the fate of a key.
func (w *loadWriters) record(key string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok {
		w.acked[key] = true
	} else {
		w.uncertain[key] = true
	}
}

// ackedCount returns how many writes were acknowledged so far.
func (w *loadWriters) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitAcked waits until n more writes were acknowledged.
func (w *loadWriters) waitAcked(tb testing.TB, more int) {
	tb.Helper()
	target := w.ackedCount() + more
	wait.For(tb, 20*time.Second, "acknowledged writes", func() error {
		if got := w.ackedCount(); got < target {
			return fmt.Errorf("%d acknowledged, want %d", got, target)
		}
		return nil
	})
}

// finish stops the writers.
func (w *loadWriters) finish() {
	close(w.stop)
	w.wg.Wait()
}

// checkLog verifies every node holds the same rows, each key at most once,
// every acknowledged key, and no key that was never written.
func (w *loadWriters) checkLog(t *testing.T, c *cluster) {
	t.Helper()
	c.waitConverged()
	var want string
	for i, nd := range c.running() {
		rows := dump(t, nd, "log")
		if i == 0 {
			want = rows
		} else if rows != want {
			t.Errorf("%s rows differ from %s", nd.id, c.running()[0].id)
		}
		if dup := count(t, nd, "SELECT count(*) - count(DISTINCT k) FROM log"); dup != 0 {
			t.Errorf("%s: %d duplicate rows: an entry was applied twice", nd.id, dup)
		}
	}
	present := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			present[f[1]] = true
		}
	}
	for k := range w.acked {
		if !present[k] {
			t.Errorf("acknowledged write %s lost", k)
		}
	}
	for k := range present {
		if !w.acked[k] && !w.uncertain[k] {
			t.Errorf("row %s was never written", k)
		}
	}
	t.Logf("%d acknowledged, %d uncertain, %d rows", len(w.acked), len(w.uncertain), len(present))
}

func TestRestartUnderWriteLoad(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, k TEXT NOT NULL)"))
	w := startLoad(c, 8)
	w.waitAcked(t, 200)
	for _, nd := range c.nodes {
		if !nd.store.IsLeader() {
			c.restart(nd) // a follower
			break
		}
	}
	w.waitAcked(t, 200)
	c.restart(c.leader()) // the leader: a new one is elected meanwhile
	w.waitAcked(t, 200)
	w.finish()
	w.checkLog(t, c)
}

// lowSnapshots makes raft snapshot and compact the log after a few entries.
func lowSnapshots(cfg *Config) {
	cfg.Timings.SnapshotThreshold = 16
	cfg.Timings.SnapshotInterval = 20 * time.Millisecond
	cfg.Timings.TrailingLogs = 4
	cfg.walSegmentSize = 4096 // so that compaction really drops old entries
}

// waitSnapshotted waits until nd's log was compacted by a snapshot.
func waitSnapshotted(t *testing.T, nd *node) {
	t.Helper()
	wait.For(t, 20*time.Second, nd.id+" snapshot and compaction", func() error {
		first, err := nd.store.logs.FirstIndex()
		if err != nil {
			return err
		}
		metas, err := nd.store.snaps.List()
		if err != nil {
			return err
		}
		if len(metas) == 0 || first <= 1 {
			return fmt.Errorf("%d snapshots, first log index %d", len(metas), first)
		}
		return nil
	})
}

func TestSnapshotInstallAndRestart(t *testing.T) {
	c := newCluster(t, 3, lowSnapshots)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, k TEXT NOT NULL)"))
	for i := range 100 {
		c.exec(stmt("INSERT OR IGNORE INTO log (id, k) VALUES (?, ?)", i+1, fmt.Sprintf("k%d", i)))
	}
	waitSnapshotted(t, c.leader())
	// A member joining now can only catch up through a snapshot.
	late := newNode(t, "late", lowSnapshots)
	c.join(late, false)
	if got := count(t, late, "SELECT count(*) FROM log"); got != 100 {
		t.Fatalf("late joiner has %d rows, want 100", got)
	}
	if late.store.fsm.restores.Load() == 0 {
		t.Errorf("late joiner caught up without installing a snapshot")
	}
	w := startLoad(c, 4)
	for i := range 100 {
		w.record(fmt.Sprintf("k%d", i), true)
	}
	w.waitAcked(t, 100)
	c.restart(late)
	for _, nd := range c.nodes {
		if !nd.store.IsLeader() && nd != late {
			c.restart(nd)
			break
		}
	}
	w.waitAcked(t, 100)
	w.finish()
	w.checkLog(t, c)
	want := dump(t, c.leader(), "log")
	for _, nd := range c.running() {
		if got := dump(t, nd, "log"); got != want {
			t.Errorf("%s differs from the leader", nd.id)
		}
	}
}

func TestDatabaseDeletedIsRebuilt(t *testing.T) {
	c := newCluster(t, 3, lowSnapshots)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, k TEXT NOT NULL)"))
	for i := range 60 {
		c.exec(stmt("INSERT OR IGNORE INTO log (id, k) VALUES (?, ?)", i+1, fmt.Sprintf("a%d", i)))
	}
	var victim *node
	for _, nd := range c.nodes {
		if !nd.store.IsLeader() {
			victim = nd
		}
	}
	waitSnapshotted(t, victim)
	c.stop(victim)
	removeDBFiles(filepath.Join(victim.dir, dbFile))
	for i := range 30 {
		c.exec(stmt("INSERT OR IGNORE INTO log (id, k) VALUES (?, ?)", 61+i, fmt.Sprintf("b%d", i)))
	}
	c.start(victim)
	c.waitConverged()
	want := dump(t, c.leader(), "log")
	if got := dump(t, victim, "log"); got != want {
		t.Fatalf("rebuilt replica differs:\n%s\nleader:\n%s", got, want)
	}
	if n := count(t, victim, "SELECT count(*) FROM log"); n != 90 {
		t.Fatalf("rebuilt replica has %d rows, want 90", n)
	}
}

func TestDatabaseLostOrCorruptWithoutSnapshot(t *testing.T) {
	for _, damage := range []string{"deleted", "corrupt"} {
		t.Run(damage, func(t *testing.T) {
			n := newNode(t, "solo", nil)
			ctx := testContext(t, 20*time.Second)
			if err := n.store.Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := n.store.Exec(ctx, stmt("CREATE TABLE t (x INTEGER)")); err != nil {
				t.Fatal(err)
			}
			for i := range 25 {
				if _, err := n.store.Exec(ctx, stmt("INSERT INTO t VALUES (?)", i)); err != nil {
					t.Fatal(err)
				}
			}
			n.stop()
			path := filepath.Join(n.dir, dbFile)
			removeDBFiles(path)
			if damage == "corrupt" {
				if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 400)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			n.open()
			if err := n.store.lead.waitLeader(ctx, n.store.closed); err != nil {
				t.Fatal(err)
			}
			idx, err := n.store.ReadIndex(ctx)
			if err == nil {
				err = n.store.WaitApplied(ctx, idx)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := count(t, n, "SELECT count(*) FROM t"); got != 25 {
				t.Fatalf("rebuilt from the log: %d rows, want 25", got)
			}
			if damage == "corrupt" {
				if _, err := os.Stat(path + ".corrupt-1"); err != nil {
					t.Fatalf("corrupt file not kept aside: %v", err)
				}
			}
		})
	}
}

func TestRecoverSingleVoter(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)"))
	for i := range 40 {
		c.exec(stmt("INSERT OR REPLACE INTO t VALUES (?)", i))
	}
	c.waitConverged()
	for _, nd := range c.nodes {
		c.stop(nd)
	}
	survivor := c.nodes[1]
	cfg := survivor.config()
	cfg.Stream.Close()
	cfg.Stream = nil
	rec, err := RecoverSingleVoter(cfg)
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	if rec.Before.AppliedIndex == 0 || rec.Before.LastLogIndex < rec.Before.AppliedIndex || rec.Kept != rec.Before.Unapplied() {
		t.Fatalf("recovery report %+v", rec)
	}
	c.start(survivor)
	if got := count(t, survivor, "SELECT count(*) FROM t"); got != 40 {
		t.Fatalf("after recovery %d rows, want 40", got)
	}
	ctx := testContext(t, 10*time.Second)
	if err := survivor.store.lead.waitLeader(ctx, survivor.store.closed); err != nil {
		t.Fatalf("survivor does not lead alone: %v", err)
	}
	servers, err := survivor.store.Servers()
	if err != nil || len(servers) != 1 || servers[0].ID != survivor.id || servers[0].Suffrage != SuffrageVoter {
		t.Fatalf("servers after recovery = %+v, %v", servers, err)
	}
	if _, err := survivor.store.Exec(ctx, stmt("INSERT INTO t VALUES (40)")); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	if got := count(t, survivor, "SELECT count(*) FROM t"); got != 41 {
		t.Fatalf("%d rows, want 41", got)
	}
	// Restarting the recovered member keeps everything and does not replay.
	c.restart(survivor)
	if err := survivor.store.lead.waitLeader(ctx, survivor.store.closed); err != nil {
		t.Fatal(err)
	}
	if got := count(t, survivor, "SELECT count(*) FROM t"); got != 41 {
		t.Fatalf("after restart %d rows, want 41", got)
	}
}

// TestInspect: a stopped member's position read from its files (a copy of the log and a
// read-only database) is the one the running store reported; while the store runs, Inspect
// refuses with ErrLogBusy instead of touching the log.
func TestInspect(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)"))
	for i := range 20 {
		c.exec(stmt("INSERT OR REPLACE INTO t VALUES (?)", i))
	}
	c.waitConverged()
	nd := c.nodes[2]
	if _, err := Inspect(nd.dir); !errors.Is(err, ErrLogBusy) {
		t.Fatalf("Inspect while the store runs: %v, want ErrLogBusy", err)
	}
	running, err := nd.store.Position()
	if err != nil {
		t.Fatal(err)
	}
	if running.LastLogIndex < running.AppliedIndex || running.AppliedIndex == 0 || running.LastLogTerm == 0 {
		t.Fatalf("running position %+v", running)
	}
	for _, n := range c.nodes {
		c.stop(n)
	}
	got, err := Inspect(nd.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastLogIndex < running.LastLogIndex || got.LastLogTerm != running.LastLogTerm || got.AppliedIndex < running.AppliedIndex {
		t.Fatalf("Inspect after stop = %+v, running store said %+v", got, running)
	}
}
