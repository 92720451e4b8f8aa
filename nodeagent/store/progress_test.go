package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// WaitCaughtUp returns only once the follower holds the leader's log: a stand-by that is
// down is not caught up (the wait ends with ctx and says how far it got); once it runs,
// it catches up (through a snapshot: the log was compacted) and the wait returns, with
// every row there. Roles make a member a voter only after this.
func TestWaitCaughtUp(t *testing.T) {
	c := newCluster(t, 1, lowSnapshots)
	c.exec(stmt("CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE)"))
	for i := range 100 {
		c.exec(stmt("INSERT OR REPLACE INTO log (k) VALUES (?)", fmt.Sprintf("k%d", i)))
	}
	waitSnapshotted(t, c.leader())
	late := newNode(t, "late", lowSnapshots)
	c.nodes = append(c.nodes, late)
	c.stop(late)
	l := c.leader().store
	if err := l.AddNonvoter(testContext(t, 10*time.Second), late.id, late.addr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := l.WaitCaughtUp(ctx, late.id)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitCaughtUp for a stand-by that is down: %v, want the deadline", err)
	}
	c.start(late)
	if err := l.WaitCaughtUp(testContext(t, 20*time.Second), late.id); err != nil {
		t.Fatalf("WaitCaughtUp once it runs: %v", err)
	}
	wait := testContext(t, 10*time.Second)
	if err := late.store.WaitApplied(wait, l.AppliedIndex()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, late, "SELECT count(*) FROM log"); got != 100 {
		t.Errorf("caught-up stand-by has %d rows, want 100", got)
	}
	// Written while it replicates through the pipeline: caught up again.
	for i := range 20 {
		c.exec(stmt("INSERT OR REPLACE INTO log (k) VALUES (?)", fmt.Sprintf("p%d", i)))
	}
	if err := l.WaitCaughtUp(testContext(t, 10*time.Second), late.id); err != nil {
		t.Fatalf("WaitCaughtUp after more writes: %v", err)
	}
}
