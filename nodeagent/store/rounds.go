package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Rounds shares one operation that answers an index (a read index) among concurrent
// callers, one round at a time. A caller always joins the next round to start, never one
// already running (whose answer may have been fixed before the call began, which a
// linearizable read cannot use), so a round serves every caller that arrived while the
// previous one ran: under load one round trip answers many readers, and a lone caller
// waits for a single round.
type Rounds struct {
	run     func(context.Context) (uint64, error)
	timeout time.Duration

	mu      sync.Mutex
	running bool
	next    *round // the round callers join, nil when none waits
}

// round is one run of the operation and its answer, shared by its callers.
type round struct {
	done    chan struct{} // closed once index and err are set
	callers int           // how many callers joined it
	index   uint64
	err     error
}

// NewRounds shares run among callers; each run gets a context of its own bounded by
// timeout (a caller that gives up does not cancel the others' round).
func NewRounds(timeout time.Duration, run func(context.Context) (uint64, error)) *Rounds {
	return &Rounds{run: run, timeout: timeout}
}

// Do joins the next round and returns its answer, or ctx's error when ctx ends first.
func (r *Rounds) Do(ctx context.Context) (uint64, error) {
	r.mu.Lock()
	if r.next == nil {
		r.next = &round{done: make(chan struct{})}
	}
	rd := r.next
	rd.callers++
	if !r.running {
		r.running = true
		go r.loop()
	}
	r.mu.Unlock()
	select {
	case <-rd.done:
		return rd.index, rd.err
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for a read index: %w", ctx.Err())
	}
}

// loop runs rounds while callers wait for one, then ends (the next Do starts it again).
func (r *Rounds) loop() {
	for {
		r.mu.Lock()
		rd := r.next
		r.next = nil
		if rd == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		rd.index, rd.err = r.run(ctx)
		cancel()
		close(rd.done)
	}
}
