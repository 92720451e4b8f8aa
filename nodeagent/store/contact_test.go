package store

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// contacts confirm a term only with voters' acceptances of that term sent after the
// moment asked about: an answer to a request sent before it (one waiting in a socket
// buffer while the leader was paused) counts for nothing, nor does a non-voter's.
func TestContactsQuorum(t *testing.T) {
	c := newContacts()
	voters := []raft.ServerID{"a", "b", "c"}
	t0 := time.Now()
	since := t0.Add(time.Second)
	ok := func() bool { q, _ := c.quorum("a", voters, 2, since); return q }
	c.record("b", 2, t0) // sent before since
	c.record("x", 2, since.Add(time.Millisecond))
	if ok() {
		t.Error("confirmed by a request sent before since and a non-voter")
	}
	c.record("c", 1, since.Add(time.Millisecond)) // an older term
	if ok() {
		t.Error("confirmed by an acceptance of an older term")
	}
	_, changed := c.quorum("a", voters, 2, since)
	c.record("c", 2, since.Add(2*time.Millisecond))
	select {
	case <-changed:
	default:
		t.Error("a record did not wake the waiter")
	}
	if !ok() {
		t.Error("self and c (term 2, sent after since) are a majority of three voters")
	}
	c.record("c", 2, since.Add(-time.Hour)) // an answer that arrives late is not newer
	if !ok() {
		t.Error("a late answer to an older request replaced a newer one")
	}
}

// A leader whose voters are gone must not confirm a read index with its stand-bys'
// answers (hashicorp/raft's VerifyLeader counted them against the voters' quorum): with
// two of three voters stopped and two non-voters answering, ReadIndex fails. The lease
// is long, so the leader does not step down meanwhile and only the count can refuse.
func TestReadIndexNeedsVoters(t *testing.T) {
	long := func(c *Config) {
		c.Timings.Heartbeat, c.Timings.Election, c.Timings.LeaderLease = 3*time.Second, 3*time.Second, 3*time.Second
	}
	c := newCluster(t, 3, long)
	for i := range 2 {
		c.join(newNode(t, "s"+string(rune('0'+i)), long), false)
	}
	l := c.leader()
	if _, err := l.store.ReadIndex(testContext(t, 5*time.Second)); err != nil {
		t.Fatalf("read index with every member up: %v", err)
	}
	var wg sync.WaitGroup
	for _, nd := range c.nodes[:3] {
		if nd != l {
			wg.Go(func() { c.stop(nd) })
		}
	}
	wg.Wait()
	ctx := testContext(t, 500*time.Millisecond)
	idx, err := l.store.ReadIndex(ctx)
	if err == nil {
		t.Fatalf("read index %d confirmed with two of three voters stopped (by the stand-bys' answers)", idx)
	}
	if !errors.Is(err, ErrNotLeader) && ctx.Err() == nil {
		t.Logf("refused: %v", err)
	}
}

// A voter that asks for a read index with its term (ReadIndexFor) counts in the quorum
// that confirms the leadership: with three voters, the leader and it are a majority and
// no heartbeat round is needed, so the answer comes even when no follower can answer a
// heartbeat. Another term, or a stand-by's word, counts for nothing: the leader then
// needs a heartbeat quorum of voters, which it cannot get here.
func TestReadIndexCountsTheAskingVoter(t *testing.T) {
	long := func(c *Config) {
		c.Timings.Heartbeat, c.Timings.Election, c.Timings.LeaderLease = 3*time.Second, 3*time.Second, 3*time.Second
	}
	c := newCluster(t, 3, long)
	c.join(newNode(t, "s0", long), false)
	l := c.leader()
	c.exec(stmt("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
	written := l.store.AppliedIndex()
	var asking *node
	for _, nd := range c.nodes[:3] {
		if nd != l {
			asking = nd
		}
	}
	term := asking.store.Term()
	var wg sync.WaitGroup
	for _, nd := range c.nodes[:3] {
		if nd != l {
			wg.Go(func() { c.stop(nd) })
		}
	}
	wg.Wait()
	idx, err := l.store.ReadIndexFor(testContext(t, 2*time.Second), asking.id, term)
	if err != nil {
		t.Fatalf("read index for voter %s in term %d (leader %s alone, the asking voter's term counted): %v", asking.id, term, l.id, err)
	}
	if idx < written {
		t.Errorf("read index %d is below the last acknowledged write %d", idx, written)
	}
	for _, bad := range []struct {
		member string
		term   uint64
	}{{asking.id, term + 1}, {asking.id, term - 1}, {"s0", term}, {l.id, term}} {
		ctx := testContext(t, 300*time.Millisecond)
		if idx, err := l.store.ReadIndexFor(ctx, bad.member, bad.term); err == nil {
			t.Errorf("read index %d confirmed for %s in term %d with two of three voters stopped", idx, bad.member, bad.term)
		}
	}
}
