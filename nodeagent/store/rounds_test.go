package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orch/internal/wait"
)

// TestRoundsJoinTheNextRound checks that a caller arriving while a round runs gets the
// answer of a later round, never of the one already running (which may have been fixed
// before the call began), and that every caller arriving meanwhile shares that next round.
func TestRoundsJoinTheNextRound(t *testing.T) {
	var runs atomic.Uint64
	release := make(chan struct{})
	started := make(chan uint64, 10)
	r := NewRounds(time.Minute, func(context.Context) (uint64, error) {
		n := runs.Add(1)
		started <- n
		<-release
		return n, nil
	})
	ctx := testContext(t, 10*time.Second)
	first := make(chan uint64, 1)
	go func() { idx, _ := r.Do(ctx); first <- idx }()
	if n := <-started; n != 1 {
		t.Fatalf("first round is run %d", n)
	}
	// Round 1 is running: these callers must all wait for round 2.
	const late = 8
	var wg sync.WaitGroup
	answers := make(chan uint64, late)
	for range late {
		wg.Go(func() {
			idx, err := r.Do(ctx)
			if err != nil {
				t.Error(err)
			}
			answers <- idx
		})
	}
	wait.For(t, 5*time.Second, "the late callers waiting", func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.next == nil || r.next.callers < late {
			return errNotYet
		}
		return nil
	})
	close(release)
	if got := <-first; got != 1 {
		t.Errorf("the first caller got round %d, want 1", got)
	}
	wg.Wait()
	close(answers)
	for idx := range answers {
		if idx < 2 {
			t.Errorf("a caller that arrived while round 1 ran got round %d's answer", idx)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d late callers took %d rounds; they should share one", late, n-1)
	}
}

// errNotYet is a condition not met yet.
var errNotYet = errorString("not yet")

type errorString string

func (e errorString) Error() string { return string(e) }

// TestReadIndexSharesBarriers checks on a real cluster that concurrent linearizable reads
// share leadership confirmations and write nothing to the log: when a barrier entry
// confirmed leadership, 64 readers at once added 64 entries before rounds were shared; a
// confirmation is now heartbeats (confirmLeadership), so they add none.
func TestReadIndexSharesBarriers(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.waitConverged()
	l := c.leader().store
	before := l.raft.LastIndex()
	ctx := testContext(t, 10*time.Second)
	const readers = 64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range readers {
		wg.Go(func() {
			<-start
			if _, err := l.ReadIndex(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if added := l.raft.LastIndex() - before; added > 0 {
		t.Errorf("%d concurrent read indexes wrote %d log entries; a read index writes none", readers, added)
	}
}

// TestRoundsShareAmongSteadyCallers: callers that ask again as soon as they are answered
// share one round each time. Without lingering they split into two halves taking turns
// (one half joined the next round while the other's ran): twice the rounds.
func TestRoundsShareAmongSteadyCallers(t *testing.T) {
	const callers, each = 8, 30
	var runs atomic.Int64
	r := NewRounds(time.Minute, func(context.Context) (uint64, error) {
		time.Sleep(2 * time.Millisecond) // a round trip
		return uint64(runs.Add(1)), nil
	})
	ctx := testContext(t, 30*time.Second)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				if _, err := r.Do(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	perRound := float64(callers*each) / float64(runs.Load())
	t.Logf("%d calls in %d rounds (%.1f per round)", callers*each, runs.Load(), perRound)
	if perRound < 0.75*callers {
		t.Errorf("%d steady callers shared %.1f per round, want at least %.1f", callers, perRound, 0.75*callers)
	}
}
