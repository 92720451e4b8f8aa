package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// maxGapScan bounds how many log entries ReadIndex and WaitApplied inspect
// when looking for entries the FSM never sees (no-ops, barriers).
const maxGapScan = 256

// maxGapPoll bounds how long WaitApplied waits before looking again at raft's
// applied index when the entries it waits for may be ones the FSM never sees.
const maxGapPoll = 20 * time.Millisecond

// DB returns the read-only pool on the local replica. Reads are as fresh as
// this node's applied index; use ReadIndex + WaitApplied for linearizable reads.
func (s *Store) DB() *sql.DB { return s.reader }

// AppliedIndex returns the index of the last entry applied to the local database.
func (s *Store) AppliedIndex() uint64 {
	p, _, _ := s.fsm.state()
	return p.index
}

// AppliedChange is a channel closed when the applied position (LastIndexTerm) next
// changes or the database breaks, so that a follower of it needs no polling.
func (s *Store) AppliedChange() <-chan struct{} {
	_, changed, _ := s.fsm.state()
	return changed
}

// CommitIndex is the last raft log entry this node knows committed.
func (s *Store) CommitIndex() uint64 { return s.raft.CommitIndex() }

// LastIndexTerm returns the index and term of the last entry applied to the
// local database (what `cluster list-database` shows).
func (s *Store) LastIndexTerm() (index, term uint64) {
	p, _, _ := s.fsm.state()
	return p.index, p.term
}

// ReadIndex confirms this node is still leader (a majority of voters commits a
// barrier written after the index was noted) and returns the index a
// linearizable read must wait for:
// every write acknowledged before the call is at or below it. Leader only:
// elsewhere it fails with a *NotLeaderError. A follower serves the read after
// WaitApplied(ctx, index) on its own replica.
//
// Concurrent calls share rounds (Rounds): one barrier confirms leadership for every
// reader that arrived while the previous one was being committed.
func (s *Store) ReadIndex(ctx context.Context) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if mutationLocalRead { // a known bug, only in jepsen's mutation builds
		return s.AppliedIndex(), nil
	}
	if s.raft.State() != raft.Leader {
		return 0, s.notLeader()
	}
	return s.reads.Do(ctx)
}

// readIndexRound is one round of ReadIndex, run for all the callers that joined it.
func (s *Store) readIndexRound(ctx context.Context) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if s.raft.State() != raft.Leader {
		return 0, s.notLeader()
	}
	if err := s.refuseBroken(); err != nil {
		return 0, err
	}
	term := s.raft.CurrentTerm()
	if mutationNoVerify { // a known bug, only in jepsen's mutation builds
		return s.lastVisible(s.notedIndex(term)), nil
	}
	if err := s.confirmLeadership(ctx); err != nil {
		return 0, err
	}
	if s.raft.CurrentTerm() != term {
		return 0, s.notLeader()
	}
	if err := s.refuseBroken(); err != nil {
		return 0, err
	}
	// The barrier is answered once the FSM has processed every entry before it, so the
	// local database already holds every acknowledged write: its own applied index (the
	// last entry it applied, at or below the barrier) is what the read waits for. A raft
	// index could name a barrier of an earlier read, which the FSM never sees.
	return s.AppliedIndex(), nil
}

// HoldsReplica reports whether the member id is a voter or a stand-by (non-voter) in this
// node's latest raft configuration: those receive every entry, so their replica catches
// up with a read index; any other member (a spare) must not wait for one.
func (s *Store) HoldsReplica(id string) bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if string(srv.ID) == id {
			return srv.Suffrage == raft.Voter || srv.Suffrage == raft.Nonvoter
		}
	}
	return false
}

// FedByLeader reports whether this follower hears from a leader now: it knows one and had
// contact within the heartbeat timeout. A follower that does not (just restarted: the
// leader's replication to it may be backing off after its failures) would wait for a read
// index its replica does not reach; its reads are better forwarded to the leader.
func (s *Store) FedByLeader() bool {
	if addr, _ := s.raft.LeaderWithID(); addr == "" {
		return false
	}
	last := s.raft.LastContact()
	return !last.IsZero() && time.Since(last) <= s.cfg.Timings.Heartbeat
}

// notedIndex is the classic read index: every write acknowledged so far is at or below it.
// The barrier of confirmLeadership makes it unnecessary (the barrier follows every such
// write); the noverify mutant, which skips the barrier, still reads at it.
func (s *Store) notedIndex(term uint64) uint64 {
	index := s.raft.CommitIndex()
	if t, start, ok := s.lead.termStart(); ok && t == term {
		// Until the new leader commits an entry of its own term its commit
		// index can lag what the previous leader committed; those entries are
		// all at or below the last index it had when elected.
		return max(index, start)
	}
	return max(index, s.raft.LastIndex())
}

// confirmLeadership proves this node still leads, after the read index was noted, by
// committing a barrier entry: only a majority of voters accepting an entry of this term
// written after that point commits it, which no leader deposed by a newer term can get.
// hashicorp/raft's VerifyLeader is not enough, for two reasons found by integration/jepsen:
// it counts every follower's answer, non-voters (stand-bys) included, against a quorum of
// voters (pause-leader-standbys-behind on 5 members), and an answer to a heartbeat sent
// before the call confirms it too — a leader paused (SIGSTOP) with replies in its socket
// buffers, cut off, then resumed, served stale reads at once (pause-during-partition on 3
// members). Concurrent reads share raft's batched log writes.
func (s *Store) confirmLeadership(ctx context.Context) error {
	if err := waitFuture(ctx, s.raft.Barrier(barrierTimeout)); err != nil {
		return s.mapRaftErr(err)
	}
	return nil
}

// barrierTimeout bounds the wait to enqueue a leadership-confirming barrier.
const barrierTimeout = 5 * time.Second

// lastVisible returns the highest index <= index of an entry the FSM applies
// (command or configuration). The entries above it are no-ops for the
// database, and followers only learn an applied index from entries they apply.
func (s *Store) lastVisible(index uint64) uint64 {
	for i := index; i > 0 && index-i < maxGapScan; i-- {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			return index
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i
		}
	}
	return index
}

// WaitApplied returns once the local database reflects every entry up to
// index, or when ctx ends.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	var poll <-chan time.Time
	for {
		cur, progress, broken := s.fsm.state()
		switch {
		case cur.index >= index:
			return nil
		case broken != nil:
			return broken
		case s.appliedBeyond(cur.index, index):
			return nil
		}
		if s.raft.AppliedIndex() < index {
			// The target may be an entry the FSM never sees; re-check when
			// raft has moved on even if the database does not change.
			poll = time.After(min(s.cfg.Timings.Commit, maxGapPoll))
		}
		select {
		case <-progress:
		case <-poll:
		case <-s.closed:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("waiting for index %d (applied %d): %w", index, cur.index, ctx.Err())
		}
	}
}

// appliedBeyond reports whether the database at applied already reflects
// index: raft has handed every entry up to index to the FSM and none of those
// after applied is one the FSM applies (or they were compacted into a
// snapshot the database already holds).
func (s *Store) appliedBeyond(applied, index uint64) bool {
	if s.raft.AppliedIndex() < index || index-applied > maxGapScan {
		return false
	}
	for i := applied + 1; i <= index; i++ {
		var l raft.Log
		err := s.logs.GetLog(i, &l)
		if errors.Is(err, raft.ErrLogNotFound) {
			continue
		}
		if err != nil || l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}
