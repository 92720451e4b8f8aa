package store

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// Exec applies req atomically through raft and returns one Result per
// statement. Leader only: elsewhere it fails with a *NotLeaderError (nothing
// was applied). A failing statement (SQL error, or ErrConflict when Expect
// does not match) rolls the whole request back and fails only this request,
// even when it shared a log entry with others. If ctx ends after the request
// was queued, the write may still be applied. ErrLeadershipLost and
// ErrOutcomeUnknown (this member's store broke while the write was in flight)
// mean the outcome is unknown. A broken member refuses new writes as not
// leader (nothing applied).
func (s *Store) Exec(ctx context.Context, req Request) ([]Result, error) {
	p, err := s.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.await(p)
}

// ExecMany queues several requests at once (they usually share one log entry)
// and returns each request's results and error, in order.
func (s *Store) ExecMany(ctx context.Context, reqs []Request) ([][]Result, []error) {
	results := make([][]Result, len(reqs))
	errs := make([]error, len(reqs))
	ps := make([]*pending, len(reqs))
	for i, req := range reqs {
		ps[i], errs[i] = s.prepare(ctx, req)
	}
	for i, p := range ps {
		if p != nil {
			results[i], errs[i] = s.await(p)
		}
	}
	return results, errs
}

// prepare validates and encodes req and queues it for the batcher.
func (s *Store) prepare(ctx context.Context, req Request) (*pending, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if s.raft.State() != raft.Leader {
		return nil, s.notLeader()
	}
	if err := s.refuseBroken(); err != nil {
		return nil, err
	}
	req, err := req.validateWith(s.lexed.tokens)
	if err != nil {
		return nil, err
	}
	data := encodeRequest(nil, req)
	if len(data) > maxRequestBytes {
		return nil, fmt.Errorf("request of %d bytes exceeds %d: %w", len(data), maxRequestBytes, ErrBadArg)
	}
	p := &pending{ctx: ctx, data: data, done: make(chan outcome, 1)}
	if err := s.batch.enqueue(p); err != nil {
		return nil, err
	}
	return p, nil
}

// await waits for a queued request's outcome.
func (s *Store) await(p *pending) ([]Result, error) {
	select {
	case o := <-p.done:
		return o.results, o.err
	case <-p.ctx.Done():
		return nil, fmt.Errorf("waiting for the write (it may still be applied): %w", p.ctx.Err())
	}
}
