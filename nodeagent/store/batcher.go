package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Coalescing limits. At most defaultMaxInflight log entries are being
// committed at once; requests that arrive meanwhile wait in the queue and go
// together into the next entry, up to maxEntryRequests requests or
// maxEntryBytes bytes (one request larger than that still gets an entry).
const (
	defaultMaxInflight = 1
	maxEntryRequests   = 1024
	maxEntryBytes      = 1 << 20
	maxRequestBytes    = 16 << 20
	queueLength        = 4096
	// maxLinger bounds how long an entry waits for the writers the previous one answered
	// (linger); the wait is also at most the previous entry's commit time.
	maxLinger = 5 * time.Millisecond
)

// pending is a validated, encoded request waiting for its outcome.
type pending struct {
	ctx  context.Context
	data []byte
	done chan outcome // capacity 1: delivery never blocks
}

// batcher gathers concurrent writes on the leader into log entries.
type batcher struct {
	raft   *raft.Raft
	mapErr func(error) error
	queue  chan *pending
	slots  chan struct{}
	stop   chan struct{}
	loop   sync.WaitGroup // the gathering goroutine
	flight sync.WaitGroup // goroutines waiting on entries in flight

	// away counts the callers answered by the last entries whose next request has not
	// arrived yet (never below 0): under a steady load they are about to write again.
	away atomic.Int64
	// lastSize and lastCommit are the requests and the commit time (ns) of the last
	// entry that completed.
	lastSize, lastCommit atomic.Int64

	// quiet fires spreadDelay after the last applied entry; when nothing was queued or
	// in flight since, it spreads the commit index (spread), so that the followers'
	// replicas hold a lone write at once rather than at the next commit timeout.
	quiet  *time.Timer
	spread func()
}

// spreadDelay is how long the leader's writes must have paused before it spreads the
// commit index of the last one: a write arriving sooner carries it anyway, so that a
// sequential writer does not pay a barrier entry per write.
const spreadDelay = 20 * time.Millisecond

// newBatcher starts the gathering goroutine.
func newBatcher(r *raft.Raft, maxInflight int, mapErr func(error) error, spread func()) *batcher {
	b := &batcher{
		raft: r, mapErr: mapErr,
		queue:  make(chan *pending, queueLength),
		slots:  make(chan struct{}, maxInflight),
		stop:   make(chan struct{}),
		spread: spread,
	}
	b.quiet = time.AfterFunc(time.Hour, b.spreadIfQuiet)
	b.quiet.Stop()
	b.loop.Add(1)
	go b.run()
	return b
}

// enqueue hands p to the batcher.
func (b *batcher) enqueue(p *pending) error {
	select {
	case b.queue <- p:
		b.arrived()
		return nil
	case <-b.stop:
		return ErrClosed
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// run waits for a request, then for a free in-flight slot, then takes
// everything queued meanwhile into one entry.
func (b *batcher) run() {
	defer b.loop.Done()
	for {
		var first *pending
		select {
		case first = <-b.queue:
		case <-b.stop:
			return
		}
		select {
		case b.slots <- struct{}{}:
		case <-b.stop:
			first.done <- outcome{err: ErrClosed}
			return
		}
		b.submit(b.linger(b.gather(first)))
	}
}

// arrived counts a request against the callers away (a writer answered before, back).
func (b *batcher) arrived() {
	for {
		v := b.away.Load()
		if v <= 0 || b.away.CompareAndSwap(v, v-1) {
			return
		}
	}
}

// linger holds batch back, briefly, for the writers the last entry answered: with K=1 in
// flight, W steady writers otherwise split into two halves that take turns (one half
// queues while the other's entry commits), and every entry costs an fsync, a SQLite
// transaction and an AppendEntries round on every member; held back, they share one
// entry. It waits only when the last entry carried more than one request (a lone writer,
// or writers that do not come back, never wait), until every answered writer has written
// again, at most the last entry's commit time and maxLinger; a wait that ends by time
// forgets the writers still away. A writer that misses the entry waits that commit time
// anyway (the entry's, before its own can go), so waiting up to as long for it shortens
// its wait by more than it lengthens the others', and saves an entry: the answered
// writers' turnaround (answer, next request, handler) is CPU-bound on a busy member and
// often took longer than half a commit (16 clients PATCHing /1.0: 40% of the entries
// stopped waiting with about 6 writers still away, which went into an entry of their own).
func (b *batcher) linger(g *gathering) []*pending {
	if b.lastSize.Load() < 2 || b.away.Load() <= 0 || g.full() {
		return g.batch
	}
	t := time.NewTimer(min(maxLinger, time.Duration(b.lastCommit.Load())))
	defer t.Stop()
	for b.away.Load() > 0 && !g.full() {
		select {
		case p := <-b.queue:
			g.add(p)
		case <-t.C:
			b.away.Store(0)
			return g.batch
		case <-b.stop:
			return g.batch
		}
	}
	return g.batch
}

// gathering is an entry being gathered: its requests and their encoded size.
type gathering struct {
	batch []*pending
	size  int
}

// add takes p into the entry, or answers it at once when its caller has given up.
func (g *gathering) add(p *pending) {
	if err := p.ctx.Err(); err != nil {
		p.done <- outcome{err: err}
		return
	}
	g.batch = append(g.batch, p)
	g.size += len(p.data)
}

// full reports whether the entry has reached the limits.
func (g *gathering) full() bool {
	return len(g.batch) >= maxEntryRequests || g.size >= maxEntryBytes
}

// gather collects queued requests after first, within the entry limits, and
// answers those whose caller has given up.
func (b *batcher) gather(first *pending) *gathering {
	g := &gathering{batch: make([]*pending, 0, 16)}
	g.add(first)
	for !g.full() {
		select {
		case p := <-b.queue:
			g.add(p)
		default:
			return g
		}
	}
	return g
}

// submit appends one entry to the raft log and delivers the outcomes when it
// has been applied.
func (b *batcher) submit(batch []*pending) {
	if len(batch) == 0 {
		<-b.slots
		return
	}
	reqs := make([][]byte, len(batch))
	for i, p := range batch {
		reqs[i] = p.data
	}
	start := time.Now()
	f := b.raft.Apply(encodeEntry(reqs), 0)
	b.flight.Add(1)
	go func() {
		defer b.flight.Done()
		err := b.wait(f)
		b.lastCommit.Store(int64(time.Since(start)))
		b.lastSize.Store(int64(len(batch)))
		b.away.Add(int64(len(batch)))
		<-b.slots
		deliver(batch, f, b.mapErr(err))
		if err == nil {
			b.quietAfterWrite()
		}
	}()
}

// quietAfterWrite notes an entry this leader committed (a write, or a configuration
// change that did not go through the batcher): the commit index is spread once writes
// pause for spreadDelay.
func (b *batcher) quietAfterWrite() {
	if b != nil {
		b.quiet.Reset(spreadDelay)
	}
}

// spreadIfQuiet spreads the commit index when no write is queued or in flight.
func (b *batcher) spreadIfQuiet() {
	select {
	case <-b.stop:
		return
	default:
	}
	if len(b.queue) == 0 && len(b.slots) == 0 && b.spread != nil {
		b.spread()
	}
}

// wait returns the future's error, or ErrRaftShutdown once the batcher is
// stopped: raft never answers a future still queued or committed but not yet
// applied when it shuts down, so the inner goroutine may outlive the store.
func (b *batcher) wait(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-b.stop:
		select {
		case err := <-done:
			return err
		default:
			return raft.ErrRaftShutdown
		}
	}
}

// deliver answers every request of an applied (or failed) entry. An entry
// that failed because this member's store broke may still have been committed
// and applied elsewhere: its requests get ErrOutcomeUnknown, never a plain
// failure.
func deliver(batch []*pending, f raft.ApplyFuture, err error) {
	if err == nil {
		res, ok := f.Response().(*entryResult)
		switch {
		case !ok:
			err = fmt.Errorf("unexpected FSM response %T", f.Response())
		case res.err != nil:
			err = res.err
		case len(res.outcomes) != len(batch):
			err = fmt.Errorf("FSM returned %d outcomes for %d requests", len(res.outcomes), len(batch))
		default:
			for i, p := range batch {
				p.done <- res.outcomes[i]
			}
			return
		}
	}
	if errors.Is(err, ErrBroken) {
		err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	for _, p := range batch {
		p.done <- outcome{err: err}
	}
}

// close stops gathering, waits for entries in flight (raft has shut down, so
// they fail promptly) and fails whatever is still queued with ErrClosed.
func (b *batcher) close() {
	b.quiet.Stop()
	close(b.stop)
	b.loop.Wait()
	b.flight.Wait()
	for {
		select {
		case p := <-b.queue:
			p.done <- outcome{err: ErrClosed}
		default:
			return
		}
	}
}
