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
//
// Like the store's batcher, a round lingers for the callers the last round answered: W
// steady callers otherwise split into two halves that take turns (one half joins the next
// round while the other's runs), which costs twice the rounds (a heartbeat round, or a
// round trip to the leader and its confirmation, each). A round waits only when the last
// one served more than one caller (a lone caller never waits), until every caller it
// answered has joined again, at most as long as the last round took (and maxRoundLinger);
// a wait that ends by time forgets the callers still away.
type Rounds struct {
	run     func(context.Context) (uint64, error)
	timeout time.Duration

	mu      sync.Mutex
	running bool
	next    *round // the round callers join, nil when none waits

	away       int           // callers the last round answered that have not joined one since
	back       chan struct{} // closed once away reaches 0 while a round lingers
	lastServed int           // callers of the last round
	lastTook   time.Duration // how long the last round ran
}

// maxRoundLinger bounds how long a round waits for the callers of the last one.
const maxRoundLinger = 5 * time.Millisecond

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
	if r.away > 0 {
		r.away--
		if r.away == 0 && r.back != nil {
			close(r.back)
			r.back = nil
		}
	}
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
		if r.next == nil {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.lingerLocked()
		rd := r.next
		r.next = nil
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		start := time.Now()
		rd.index, rd.err = r.run(ctx)
		cancel()
		r.mu.Lock()
		r.lastServed, r.lastTook, r.away = rd.callers, time.Since(start), rd.callers
		r.mu.Unlock()
		close(rd.done)
	}
}

// lingerLocked holds the next round back for the callers the last round answered (see
// Rounds), with r.mu held; it returns with r.mu held and nobody counted away.
func (r *Rounds) lingerLocked() {
	if r.lastServed < 2 || r.away <= 0 {
		r.away = 0
		return
	}
	back := make(chan struct{})
	r.back = back
	t := time.NewTimer(min(maxRoundLinger, r.lastTook))
	r.mu.Unlock()
	select {
	case <-back:
	case <-t.C:
	}
	t.Stop()
	r.mu.Lock()
	r.back, r.away = nil, 0
}
