package store

import (
	"context"
	"errors"
	"fmt"
	"orch/internal/wait"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// healthyLeader waits until a member other than broken leads and returns it. The broken
// member may win an election as a last resort (it may hold entries the others lack), but
// then hands leadership over at once.
func healthyLeader(t *testing.T, c *cluster, broken *node) *node {
	t.Helper()
	var found *node
	wait.For(t, 10*time.Second, "a leader other than the broken "+broken.id, func() error {
		for _, nd := range c.nodes {
			if nd != broken && nd.store != nil && nd.store.IsLeader() {
				found = nd
				return nil
			}
		}
		return fmt.Errorf("no healthy leader (broken %s leads: %v)", broken.id, broken.store.IsLeader())
	})
	return found
}

// fillDatabase makes nd's database unable to grow (PRAGMA max_page_count on the FSM's
// writer connection): the next write needing a page fails with SQLITE_FULL, as on a full
// disk, on this member only.
func fillDatabase(t *testing.T, nd *node) {
	t.Helper()
	ctx := context.Background()
	var pages int64
	if err := nd.store.fsm.conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatalf("%s: page_count: %v", nd.id, err)
	}
	if _, err := nd.store.fsm.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatalf("%s: max_page_count: %v", nd.id, err)
	}
}

// TestBrokenLeaderStepsAside: a leader whose database cannot commit (disk full) reports
// the write in flight as outcome unknown (it was committed: the others apply it), hands
// leadership over, never stands for election again, and catches up after a restart.
func TestBrokenLeaderStepsAside(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)"))
	c.waitConverged()
	old := c.leader()
	fillDatabase(t, old)

	big := strings.Repeat("x", 64<<10)
	_, err := old.store.Exec(context.Background(), stmt("INSERT INTO kv VALUES ('w1', ?)", big))
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("%s: write while the database breaks: err = %v, want ErrOutcomeUnknown", old.id, err)
	}
	if berr := old.store.Broken(); !errors.Is(berr, ErrBroken) {
		t.Fatalf("%s: Broken() = %v, want ErrBroken", old.id, berr)
	}

	var leader *node
	wait.For(t, 5*time.Second, "another member leading", func() error {
		for _, nd := range c.nodes {
			if nd != old && nd.store.IsLeader() {
				leader = nd
				return nil
			}
		}
		return fmt.Errorf("%s still leads (state %v)", old.id, old.store.raft.State())
	})
	// The write that broke the old leader was committed: the new leader applies it.
	wait.For(t, 5*time.Second, leader.id+" applying w1 (the write was committed)", func() error {
		if n := count(t, leader, "SELECT count(*) FROM kv WHERE k = 'w1'"); n != 1 {
			return fmt.Errorf("w1 rows = %d", n)
		}
		return nil
	})
	if _, err := old.store.Exec(context.Background(), stmt("INSERT INTO kv VALUES ('w2', 'v')")); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("%s: write on the broken ex-leader: err = %v, want ErrNotLeader", old.id, err)
	}
	c.exec(stmt("INSERT OR REPLACE INTO kv VALUES ('w3', 'v')"))

	// With the new leader gone, the healthy member leads (the broken one votes for it, or
	// wins as a last resort and hands over).
	c.stop(leader)
	healthyLeader(t, c, old)
	c.exec(stmt("INSERT OR REPLACE INTO kv VALUES ('w4', 'v')"))

	c.start(leader)
	c.restart(old)
	c.exec(stmt("INSERT OR REPLACE INTO kv VALUES ('w5', 'v')"))
	c.waitConverged()
	want := dump(t, c.leader(), "kv")
	for _, nd := range c.nodes {
		if got := dump(t, nd, "kv"); got != want {
			t.Fatalf("%s diverged after restart:\n%s\nleader has:\n%s", nd.id, got, want)
		}
	}
	if old.store.Broken() != nil {
		t.Fatalf("%s: still broken after a restart: %v", old.id, old.store.Broken())
	}
}

// TestBrokenFollowerDoesNotCampaign: a follower whose database broke refuses a leadership
// transfer to it (the leader keeps leading), and when the leader goes the healthy member
// is elected (the broken one votes).
func TestBrokenFollowerDoesNotCampaign(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)"))
	c.waitConverged()
	leader := c.leader()
	var broken *node
	for _, nd := range c.nodes {
		if nd != leader {
			broken = nd
			break
		}
	}
	fillDatabase(t, broken)
	c.exec(stmt("INSERT OR REPLACE INTO kv VALUES ('w1', ?)", strings.Repeat("y", 64<<10)))
	wait.For(t, 5*time.Second, broken.id+" broken", func() error {
		if broken.store.Broken() == nil {
			return errors.New("not broken yet")
		}
		return nil
	})
	f := leader.store.raft.LeadershipTransferToServer(raft.ServerID(broken.id), raft.ServerAddress(broken.addr))
	if err := f.Error(); err == nil || broken.store.IsLeader() {
		t.Fatalf("%s: leadership transfer to the broken follower: err %v, leads %v; want refused", broken.id, err, broken.store.IsLeader())
	}
	if !leader.store.IsLeader() {
		t.Fatalf("%s: lost leadership after the refused transfer", leader.id)
	}
	c.exec(stmt("INSERT OR REPLACE INTO kv VALUES ('w2', 'v')"))
	c.stop(leader)
	healthyLeader(t, c, broken)
	c.exec(stmt("INSERT OR REPLACE INTO kv VALUES ('w3', 'v')"))
}

// TestUnknownCodecVersionStops: an entry written by a newer codec is never skipped: the
// store stops applying with an error naming the version and the entry, and stays so
// after a restart (replay meets the same entry).
func TestUnknownCodecVersionStops(t *testing.T) {
	c := newCluster(t, 1, nil)
	nd := c.nodes[0]
	c.exec(stmt("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY)"))
	before := nd.store.AppliedIndex()
	data := encodeEntry([][]byte{encodeRequest(nil, stmt("INSERT INTO kv VALUES ('new')"))})
	data[0] = entryVersion + 1
	f := nd.store.raft.Apply(data, 0)
	if err := f.Error(); err != nil {
		t.Fatalf("raft apply: %v", err)
	}
	idx := f.Index()
	check := func(when string) {
		t.Helper()
		err := nd.store.Broken()
		if !errors.Is(err, ErrBroken) {
			t.Fatalf("%s: Broken() = %v, want ErrBroken", when, err)
		}
		for _, want := range []string{fmt.Sprintf("version %d", entryVersion+1), fmt.Sprintf("entry %d", idx)} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: error %q does not name %q", when, err, want)
			}
		}
		if got := nd.store.AppliedIndex(); got >= idx || got < before {
			t.Fatalf("%s: applied index %d, want in [%d, %d)", when, got, before, idx)
		}
	}
	check("after apply")
	c.restart(nd)
	wait.For(t, 5*time.Second, "replay reaching the entry", func() error {
		if nd.store.Broken() == nil {
			return errors.New("not broken")
		}
		return nil
	})
	check("after restart")
}

// TestExpectOnlyOnDML: Expect on a statement that does not set sqlite3_changes itself is
// refused before the log; on INSERT/UPDATE/DELETE/REPLACE it works.
func TestExpectOnlyOnDML(t *testing.T) {
	c := newCluster(t, 1, nil)
	s := c.nodes[0].store
	c.exec(stmt("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY)"))
	last := s.raft.LastIndex()
	for _, sql := range []string{
		"SELECT 1",
		"CREATE TABLE t2 (a)",
		"WITH x AS (SELECT 1) SELECT * FROM x",
		"CREATE INDEX kv_k ON kv(k)",
	} {
		_, err := s.Exec(context.Background(), Request{{SQL: sql, Expect: Int64(0)}})
		if !errors.Is(err, ErrBadArg) {
			t.Errorf("%q with Expect: err = %v, want ErrBadArg", sql, err)
		}
	}
	if got := s.raft.LastIndex(); got != last {
		t.Fatalf("refused requests reached the log: last index %d, was %d", got, last)
	}
	for _, sql := range []string{
		"INSERT INTO kv VALUES ('a')",
		"REPLACE INTO kv VALUES ('a')",
		"update kv SET k = 'b' WHERE k = 'a'",
		"DELETE FROM kv WHERE k = 'b'",
	} {
		if _, err := s.Exec(context.Background(), Request{{SQL: sql, Expect: Int64(1)}}); err != nil {
			t.Errorf("%q with Expect 1: %v", sql, err)
		}
	}
}
