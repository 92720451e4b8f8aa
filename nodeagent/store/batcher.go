package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
		b.submit(b.gather(first))
	}
}

// gather collects queued requests after first, within the entry limits, and
// answers those whose caller has given up.
func (b *batcher) gather(first *pending) []*pending {
	batch := make([]*pending, 0, 16)
	size := 0
	add := func(p *pending) {
		if err := p.ctx.Err(); err != nil {
			p.done <- outcome{err: err}
			return
		}
		batch = append(batch, p)
		size += len(p.data)
	}
	add(first)
	for len(batch) < maxEntryRequests && size < maxEntryBytes {
		select {
		case p := <-b.queue:
			add(p)
		default:
			return batch
		}
	}
	return batch
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
	f := b.raft.Apply(encodeEntry(reqs), 0)
	b.flight.Add(1)
	go func() {
		defer b.flight.Done()
		err := b.wait(f)
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
