package store

import (
	"errors"
	"fmt"
	"orch/internal/wait"
	"testing"
	"time"
)

func TestReplicationAndNotLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	c.exec(stmt("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)"))
	c.exec(stmt("INSERT OR REPLACE INTO kv VALUES ('a', 1)"))
	c.waitConverged()
	for _, nd := range c.nodes {
		if got := dump(t, nd, "kv"); got != "a 1\n" {
			t.Errorf("%s: rows %q", nd.id, got)
		}
	}
	servers, err := l.store.Servers()
	if err != nil || len(servers) != 3 {
		t.Fatalf("servers = %+v, %v", servers, err)
	}
	ctx := testContext(t, 10*time.Second)
	for _, nd := range c.nodes {
		if nd == l {
			continue
		}
		_, err := nd.store.Exec(ctx, stmt("INSERT INTO kv VALUES ('b', 2)"))
		var nle *NotLeaderError
		if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) {
			t.Fatalf("%s: exec on follower = %v, want NotLeaderError", nd.id, err)
		}
		if nle.LeaderID != l.id || nle.LeaderAddr != l.addr {
			t.Errorf("%s: NotLeaderError names %s at %s, want %s at %s", nd.id, nle.LeaderID, nle.LeaderAddr, l.id, l.addr)
		}
		if _, err := nd.store.ReadIndex(ctx); !errors.Is(err, ErrNotLeader) {
			t.Errorf("%s: ReadIndex on follower = %v, want ErrNotLeader", nd.id, err)
		}
		if err := nd.store.AddVoter(ctx, "x", "127.0.0.1:1"); !errors.Is(err, ErrNotLeader) {
			t.Errorf("%s: AddVoter on follower = %v, want ErrNotLeader", nd.id, err)
		}
	}
}

// TestFailingRequestInBatchIsIsolated sends requests together so that they
// share log entries; the failing one must not affect the others on any replica.
func TestFailingRequestInBatchIsIsolated(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS u (k TEXT UNIQUE)"))
	c.exec(stmt("INSERT OR REPLACE INTO u VALUES ('taken')"))
	l := c.leader()
	var reqs []Request
	for i := range 30 {
		k := fmt.Sprintf("k%02d", i)
		if i%3 == 1 {
			k = "taken" // violates UNIQUE
		}
		reqs = append(reqs, Request{
			{SQL: "INSERT INTO u VALUES (?)", Args: []any{k + "-first"}},
			{SQL: "INSERT INTO u VALUES (?)", Args: []any{k}},
		})
	}
	before := l.store.AppliedIndex()
	_, errs := l.store.ExecMany(testContext(t, 10*time.Second), reqs)
	entries := l.store.AppliedIndex() - before
	for i, err := range errs {
		if i%3 == 1 && err == nil {
			t.Errorf("request %d: want UNIQUE violation, got success", i)
		}
		if i%3 != 1 && err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if entries >= uint64(len(reqs)) {
		t.Errorf("%d requests took %d log entries: not coalesced", len(reqs), entries)
	}
	t.Logf("%d requests in %d log entries", len(reqs), entries)
	c.waitConverged()
	want := dump(t, l, "u")
	if n := count(t, l, "SELECT count(*) FROM u"); n != 1+20*2 {
		t.Errorf("leader has %d rows, want 41:\n%s", n, want)
	}
	if n := count(t, l, "SELECT count(*) FROM u WHERE k LIKE '%-first'"); n != 20 {
		t.Errorf("%d '-first' rows, want 20 (failed requests must roll back entirely)", n)
	}
	for _, nd := range c.nodes {
		if got := dump(t, nd, "u"); got != want {
			t.Errorf("%s differs from leader:\n%s\nvs\n%s", nd.id, got, want)
		}
	}
}

// TestLinearizableFollowerRead: a write acknowledged by the leader is visible
// on a follower after ReadIndex on the leader and WaitApplied on the follower.
// The writes are idempotent and retried on the next leader when one lost its
// lease mid-write (a loaded machine starves the in-process leader past the
// test timings' LeaderLease): what is checked is every acknowledged write.
func TestLinearizableFollowerRead(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS reg (id INTEGER PRIMARY KEY, v INTEGER)"))
	c.exec(stmt("INSERT OR REPLACE INTO reg VALUES (1, 0)"))
	ctx := testContext(t, 20*time.Second)
	for i := 1; i <= 50; i++ {
		c.exec(stmt("UPDATE reg SET v = ? WHERE id = 1", i))
		var l *node
		var idx uint64
		wait.For(t, 10*time.Second, "a read index on the leader", func() error {
			var err error
			l = c.leader()
			idx, err = l.store.ReadIndex(ctx)
			return err
		})
		f := c.nodes[(i%2)+1]
		if f == l {
			f = c.nodes[0]
		}
		if err := f.store.WaitApplied(ctx, idx); err != nil {
			t.Fatalf("%s: %v", f.id, err)
		}
		if got := count(t, f, "SELECT v FROM reg WHERE id = 1"); got != int64(i) {
			t.Fatalf("%s read %d after write %d acknowledged (read index %d, applied %d)", f.id, got, i, idx, f.store.AppliedIndex())
		}
	}
}

// TestKillLeader closes the leader without transferring leadership: another
// node takes over and writes continue.
func TestKillLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS t (x INTEGER PRIMARY KEY)"))
	c.exec(stmt("INSERT OR REPLACE INTO t VALUES (1)"))
	old := c.leader()
	start := time.Now()
	old.stop()
	nl := c.leader()
	t.Logf("new leader %s after %s", nl.id, time.Since(start))
	if nl == old {
		t.Fatalf("stopped node still leader")
	}
	c.exec(stmt("INSERT OR REPLACE INTO t VALUES (2)"))
	c.waitConverged()
	for _, nd := range c.running() {
		if got := dump(t, nd, "t"); got != "1\n2\n" {
			t.Errorf("%s: rows %q", nd.id, got)
		}
	}
	old.open()
	c.waitConverged()
	if got := dump(t, old, "t"); got != "1\n2\n" {
		t.Errorf("%s after rejoin: rows %q", old.id, got)
	}
}

func TestTransferLeadershipAndMembership(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	ctx := testContext(t, 20*time.Second)
	changes := l.store.LeaderChanges()
	if !<-changes {
		t.Fatalf("leader's first LeaderChanges value is false")
	}
	if err := l.store.TransferLeadership(ctx); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	select {
	case v := <-changes:
		if v {
			t.Fatalf("old leader notified true after transfer")
		}
	case <-ctx.Done():
		t.Fatalf("old leader never notified of losing leadership")
	}
	nl := c.leader()
	if nl == l {
		wait.For(t, 5*time.Second, "leadership moves", func() error {
			if c.leader() == l {
				return errors.New("still on the old leader")
			}
			return nil
		})
		nl = c.leader()
	}
	if err := nl.store.DemoteVoter(ctx, l.id); err != nil {
		t.Fatalf("demote: %v", err)
	}
	c.join(newNode(t, "n3", nil), false)
	servers, err := nl.store.Servers()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range servers {
		got[s.ID] = s.Suffrage
	}
	if got[l.id] != SuffrageNonvoter || got["n3"] != SuffrageNonvoter || len(got) != 4 {
		t.Fatalf("servers after demote/add = %v", got)
	}
	if err := nl.store.RemoveServer(ctx, "n3"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if servers, _ := nl.store.Servers(); len(servers) != 3 {
		t.Fatalf("servers after remove = %+v", servers)
	}
}
