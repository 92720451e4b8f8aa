package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"orch/internal/wait"
)

// syncGate holds the leader's rounds of deferred syncs while shut, and fails them while
// failing is set.
type syncGate struct {
	shut    atomic.Bool
	open    chan struct{}
	failing atomic.Bool
	held    atomic.Int64 // rounds that found the gate shut
}

func newSyncGate() *syncGate { return &syncGate{open: make(chan struct{})} }

func (g *syncGate) hook() error {
	if g.failing.Load() {
		return errors.New("injected fdatasync failure")
	}
	if g.shut.Load() {
		g.held.Add(1)
		<-g.open
	}
	return nil
}

// applied is nd's applied index.
func applied(nd *node) uint64 {
	pos, _, _ := nd.store.fsm.state()
	return pos.index
}

// deferredAppends is how many of nd's appends had their sync deferred.
func deferredAppends(nd *node) int64 {
	return nd.store.logs.(*walStore).syncs.deferredCount.Load()
}

// TestLeaderAppendNotAppliedBeforeDurable: the leader's appends are written with their
// fdatasync deferred (its followers' are not), and while the leader's sync is held back,
// an entry both followers hold and acknowledged — so committed by raft's count, which
// includes the leader's copy — is applied nowhere and its write not answered: not on the
// leader (the FSM waits for its copy to be durable) and not on the followers, though a
// second entry's AppendEntries carried the commit index on (limited to the leader's durable
// index). Once the sync runs, both writes are answered and applied everywhere.
func TestLeaderAppendNotAppliedBeforeDurable(t *testing.T) {
	gate := newSyncGate()
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.leaderSyncHook = gate.hook
		cfg.maxInflight = 2 // the second write's entry goes out while the first waits
	})
	c.exec(stmt("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
	c.waitConverged()
	l := c.leader()
	var followers []*node
	for _, nd := range c.nodes {
		if nd != l {
			followers = append(followers, nd)
		}
	}
	if deferredAppends(l) == 0 {
		t.Fatal("the leader deferred no sync of its appends")
	}
	for _, f := range followers {
		if n := deferredAppends(f); n != 0 {
			t.Fatalf("follower %s deferred %d syncs: it would acknowledge entries it could lose", f.id, n)
		}
	}

	gate.shut.Store(true)
	released := false
	release := func() {
		if !released {
			released = true
			close(gate.open)
		}
	}
	t.Cleanup(release)
	ctx := testContext(t, 20*time.Second)
	write := func(k int) (uint64, <-chan error) {
		before := l.store.raft.LastIndex()
		done := make(chan error, 1)
		go func() {
			_, err := l.store.Exec(ctx, stmt("INSERT INTO t VALUES (?, 'x')", k))
			done <- err
		}()
		var index uint64
		wait.For(t, 10*time.Second, fmt.Sprintf("write %d acknowledged by both followers", k), func() error {
			if index = l.store.raft.LastIndex(); index <= before {
				return fmt.Errorf("not appended yet (last index %d)", index)
			}
			for _, f := range followers {
				if got, _ := l.store.ballot.progress.at(raft.ServerID(f.id)); got < index {
					return fmt.Errorf("%s acknowledged up to %d of %d", f.id, got, index)
				}
			}
			return nil
		})
		return index, done
	}
	first, firstDone := write(1)
	second, secondDone := write(2)
	wait.For(t, 5*time.Second, "the leader's sync held", func() error {
		if gate.held.Load() == 0 {
			return errors.New("no round reached the gate")
		}
		return nil
	})
	if got := l.store.raft.CommitIndex(); got < first {
		t.Fatalf("raft's commit index %d is below the first entry %d: the test shows nothing", got, first)
	}
	select {
	case err := <-firstDone:
		t.Fatalf("the first write was answered (%v) before the leader's copy was durable", err)
	default:
	}
	for _, nd := range c.nodes {
		if got := applied(nd); got >= first {
			t.Fatalf("%s applied up to %d, the first entry (%d) included, before the leader's copy was durable", nd.id, got, first)
		}
	}

	release()
	for i, done := range []<-chan error{firstDone, secondDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("write %d: %v", i+1, err)
			}
		case <-ctx.Done():
			t.Fatalf("write %d not answered after the sync ran", i+1)
		}
	}
	c.waitConverged()
	for _, nd := range c.nodes {
		if got := applied(nd); got < second {
			t.Errorf("%s applied up to %d, below the second entry %d", nd.id, got, second)
		}
		if n := count(t, nd, "SELECT count(*) FROM t"); n != 2 {
			t.Errorf("%s holds %d rows, want 2", nd.id, n)
		}
	}
}

// TestFailedLeaderSyncBreaksLeader: a deferred fdatasync that fails breaks the leader: the
// write it held is answered as of unknown outcome (its entry may be committed on the
// followers' copies), never as done, the member hands leadership over, and the cluster
// goes on writing through the new leader.
func TestFailedLeaderSyncBreaksLeader(t *testing.T) {
	gate := newSyncGate()
	c := newCluster(t, 3, func(cfg *Config) { cfg.leaderSyncHook = gate.hook })
	c.exec(stmt("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
	l := c.leader()
	gate.failing.Store(true)
	_, err := l.store.Exec(testContext(t, 10*time.Second), stmt("INSERT INTO t VALUES (1, 'x')"))
	if !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, ErrBroken) {
		t.Fatalf("write over a failed sync: %v, want outcome unknown", err)
	}
	if l.store.Broken() == nil {
		t.Fatal("the leader is not broken after its sync failed")
	}
	gate.failing.Store(false)
	wait.For(t, 10*time.Second, "a new leader", func() error {
		if nl := c.leader(); nl == l {
			return errors.New("the broken member still leads")
		}
		return nil
	})
	c.exec(stmt("INSERT OR REPLACE INTO t VALUES (2, 'y')"))
	if nl := c.leader(); count(t, nl, "SELECT count(*) FROM t WHERE k = 2") != 1 {
		t.Errorf("%s: the write through the new leader is missing", nl.id)
	}
}

// TestDeferredSyncsWaitDurable: waitDurable runs the round itself when the entry's sync is
// still pending, and a change of the log that syncs (a follower's append, a truncation)
// leaves the whole log durable.
func TestDeferredSyncsWaitDurable(t *testing.T) {
	d := newDeferredSyncs()
	defer d.close()
	var rounds atomic.Int64
	d.beforeRound = func() error { rounds.Add(1); return nil }
	d.stored(7)
	if err := d.waitDurable(7); err != nil || d.durable.Load() < 7 {
		t.Fatalf("waitDurable(7): %v, durable %d", err, d.durable.Load())
	}
	if err := d.waitDurable(9); err == nil {
		t.Error("waitDurable of an entry never written succeeded")
	}
	if err := d.changeLog(func() error { return nil }, func() (uint64, error) { return 3, nil }); err != nil {
		t.Fatal(err)
	}
	if got := d.durable.Load(); got != 3 {
		t.Errorf("durable %d after a truncation to 3", got)
	}
	if rounds.Load() == 0 {
		t.Error("no round ran")
	}
}

// TestLeaderRotatesSegmentsWithDeferredSyncs: with 4 KiB segments the leader's deferred
// appends seal segments all the time, and raft-wal's rotation commits each seal from its
// own goroutine (after syncing the appends pending: syncedMeta) while the rounds and the
// followers' appends run: nothing deadlocks, every acknowledged write is on every member,
// and the former leader's log opens again after a restart.
func TestLeaderRotatesSegmentsWithDeferredSyncs(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.walSegmentSize = 4096 })
	c.exec(stmt("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, k TEXT NOT NULL)"))
	l := c.leader()
	w := startLoad(c, 8)
	w.waitAcked(t, 300)
	segments, err := filepath.Glob(filepath.Join(l.dir, "raft", "*.wal"))
	if err != nil || len(segments) < 3 {
		t.Fatalf("the leader's log has %d segment files (%v): no rotation to test", len(segments), err)
	}
	if deferredAppends(l) == 0 {
		t.Fatal("the leader deferred no sync")
	}
	c.restart(l)
	w.waitAcked(t, 100)
	w.finish()
	w.checkLog(t, c)
}
