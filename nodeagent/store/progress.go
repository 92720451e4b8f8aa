package store

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// progress is, per follower, the highest log index it acknowledged holding (its match
// index), as the leader's transport saw the answers: hashicorp/raft keeps its own
// replication state private. Roles use it to make a member a voter only once it holds
// the log (WaitCaughtUp): two voters added before either caught up left the leader
// without a quorum for its lease, and it stepped down in the middle of a join.
type progress struct {
	mu      sync.Mutex
	match   map[raft.ServerID]uint64
	changed chan struct{} // closed and replaced on every advance
}

func newProgress() *progress {
	return &progress{match: map[raft.ServerID]uint64{}, changed: make(chan struct{})}
}

// acked records that id holds the log up to index.
func (p *progress) acked(id raft.ServerID, index uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if index <= p.match[id] {
		return
	}
	p.match[id] = index
	close(p.changed)
	p.changed = make(chan struct{})
}

// forget drops what is known of id (before it is added again: a member that was wiped
// and rejoins holds nothing of what it acknowledged before).
func (p *progress) forget(id raft.ServerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.match, id)
}

// at is id's match index and a channel closed at the next advance of anyone's.
func (p *progress) at(id raft.ServerID) (uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.match[id], p.changed
}

// appendAcked records a successful AppendEntries (a heartbeat carries no entries and
// says nothing of the log).
func (p *progress) appendAcked(id raft.ServerID, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if resp.Success && len(args.Entries) > 0 {
		p.acked(id, args.Entries[len(args.Entries)-1].Index)
	}
}

// AppendEntries implements raft.Transport, recording the follower's progress and, for a
// heartbeat or an append it accepts, when it was sent (contacts).
func (t *ballotTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	sent := time.Now()
	t.limitCommit(args)
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil {
		t.progress.appendAcked(id, args, resp)
		t.contacts.appendAccepted(id, args, resp, sent)
		if len(args.Entries) == 0 && t.onHeartbeat != nil {
			t.onHeartbeat(id, sent)
		}
	}
	return err
}

// InstallSnapshot implements raft.Transport, recording the follower's progress.
func (t *ballotTransport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	err := t.NetworkTransport.InstallSnapshot(id, target, args, resp, data)
	if err == nil && resp.Success {
		t.progress.acked(id, args.LastLogIndex)
	}
	return err
}

// progressPipeline records the progress the answers of a replication pipeline show, on
// their way from the transport to raft.
type progressPipeline struct {
	raft.AppendPipeline
	id        raft.ServerID
	progress  *progress
	contacts  *contacts
	out       chan raft.AppendFuture
	stop      chan struct{}
	closeOnce sync.Once
}

func newProgressPipeline(p raft.AppendPipeline, id raft.ServerID, pr *progress, c *contacts) *progressPipeline {
	pp := &progressPipeline{AppendPipeline: p, id: id, progress: pr, contacts: c, out: make(chan raft.AppendFuture), stop: make(chan struct{})}
	go pp.forward()
	return pp
}

func (p *progressPipeline) forward() {
	in := p.AppendPipeline.Consumer()
	for {
		select {
		case f := <-in:
			if f.Error() == nil {
				p.progress.appendAcked(p.id, f.Request(), f.Response())
				p.contacts.appendAccepted(p.id, f.Request(), f.Response(), f.Start())
			}
			select {
			case p.out <- f:
			case <-p.stop:
				return
			}
		case <-p.stop:
			return
		}
	}
}

// Consumer implements raft.AppendPipeline.
func (p *progressPipeline) Consumer() <-chan raft.AppendFuture { return p.out }

// Close implements raft.AppendPipeline.
func (p *progressPipeline) Close() error {
	p.closeOnce.Do(func() { close(p.stop) })
	return p.AppendPipeline.Close()
}

// WaitCaughtUp waits until server id holds the leader's log as it stands when called (its
// acknowledged index reaches the leader's last index), or ctx ends. Leader only.
func (s *Store) WaitCaughtUp(ctx context.Context, id string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if !s.IsLeader() {
		return ErrNotLeader
	}
	target := s.raft.LastIndex()
	t := time.NewTicker(s.cfg.Timings.Heartbeat)
	defer t.Stop()
	for {
		got, next := s.ballot.progress.at(raft.ServerID(id))
		if got >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s has the log up to index %d of %d: %w", id, got, target, ctx.Err())
		case <-s.closed:
			return ErrClosed
		case <-next:
		case <-t.C:
			if !s.IsLeader() {
				return ErrNotLeader
			}
		}
	}
}
