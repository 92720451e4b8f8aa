package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestSteadyWritersShareOneEntry: writers that write again as soon as they are answered
// share one log entry each round. With one entry in flight they used to split into two
// halves taking turns (one half queued while the other's entry committed), which cost
// every member an fsync, a SQLite transaction and a replication round per half.
func TestSteadyWritersShareOneEntry(t *testing.T) {
	const writers, rounds = 8, 40
	c := newCluster(t, 3, nil)
	c.exec(stmt("CREATE TABLE w (id INTEGER PRIMARY KEY, writer INTEGER)"))
	s := c.leader().store
	ctx := testContext(t, 60*time.Second)
	// Warm up: the batcher learns the load from the entries before.
	writeRounds(ctx, t, s, writers, 5)
	before := s.AppliedIndex()
	writeRounds(ctx, t, s, writers, rounds)
	entries := s.AppliedIndex() - before
	perEntry := float64(writers*rounds) / float64(entries)
	t.Logf("%d writes in %d entries (%.1f per entry)", writers*rounds, entries, perEntry)
	if perEntry < 0.75*writers {
		t.Errorf("%d steady writers wrote %.1f requests per entry, want at least %.1f", writers, perEntry, 0.75*writers)
	}
}

// writeRounds runs writers goroutines that each write n times back to back.
func writeRounds(ctx context.Context, t *testing.T, s *Store, writers, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for range n {
				if _, err := s.Exec(ctx, Request{{SQL: "INSERT INTO w (writer) VALUES (?)", Args: []any{w}}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
