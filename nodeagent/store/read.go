package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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

// ReadIndex confirms this node is still leader (a majority of voters accepts a
// heartbeat of its term sent after the index was noted) and returns the index a
// linearizable read must wait for:
// every write acknowledged before the call is at or below it. Leader only:
// elsewhere it fails with a *NotLeaderError. A follower serves the read after
// WaitApplied(ctx, index) on its own replica.
//
// Concurrent calls share rounds (Rounds): one confirmation serves every reader that
// arrived while the previous one ran.
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

// Term is this member's current raft term. A member's term only grows, and it grows
// before the member votes in a newer election or accepts a newer leader's entries; so a
// voter that reads its term as t after a read began tells the leader of t that it had
// not helped elect a newer leader by then (ReadIndexFor).
func (s *Store) Term() uint64 { return s.raft.CurrentTerm() }

// ReadIndexFor is ReadIndex for a read that began on member, which read its Term as term
// after the read began. When member is a voter of this leader's configuration and term is
// the leader's, the member is counted in the quorum that confirms the leadership, as if it
// had accepted a heartbeat sent after the read began: no voter it counts can have helped
// elect a newer leader before the read began, so no write a newer leader acknowledged
// before then can be missing from the index. With three voters the leader and that member
// are a majority and no heartbeat round is needed; otherwise (another term, not a voter,
// more voters) it is ReadIndex.
func (s *Store) ReadIndexFor(ctx context.Context, member string, term uint64) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if mutationLocalRead || mutationNoVerify { // known bugs, only in jepsen's mutation builds
		return s.ReadIndex(ctx)
	}
	index, ok, err := s.attestedIndex(raft.ServerID(member), term)
	if err != nil || ok {
		return index, err
	}
	return s.ReadIndex(ctx)
}

// attestedIndex is ReadIndexFor when the leader and the attesting voter are a majority of
// voters (ok false otherwise: a heartbeat round must confirm).
func (s *Store) attestedIndex(member raft.ServerID, term uint64) (index uint64, ok bool, err error) {
	if s.raft.State() != raft.Leader {
		return 0, false, s.notLeader()
	}
	if err := s.refuseBroken(); err != nil {
		return 0, false, err
	}
	self := raft.ServerID(s.cfg.ID)
	if term != s.raft.CurrentTerm() || member == self {
		return 0, false, nil
	}
	voters, err := s.voters()
	if err != nil {
		return 0, false, s.mapRaftErr(err)
	}
	if !slices.Contains(voters, member) || !slices.Contains(voters, self) || 2 <= len(voters)/2 {
		return 0, false, nil
	}
	index = s.lastVisible(term, s.notedIndex(term))
	if s.raft.CurrentTerm() != term || s.raft.State() != raft.Leader {
		return 0, false, s.notLeader()
	}
	if err := s.refuseBroken(); err != nil {
		return 0, false, err
	}
	return index, true, nil
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
	index := s.lastVisible(term, s.notedIndex(term))
	if mutationNoVerify { // a known bug, only in jepsen's mutation builds
		return index, nil
	}
	if err := s.confirmLeadership(ctx, term); err != nil {
		return 0, err
	}
	if s.raft.CurrentTerm() != term {
		return 0, s.notLeader()
	}
	if err := s.refuseBroken(); err != nil {
		return 0, err
	}
	return index, nil
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

// notedIndex is the read index: every write acknowledged so far is at or below it.
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

// confirmLeadership proves this node still led in term after the read index was noted:
// a majority of voters (itself included) accepted an AppendEntries of that term sent
// after the call began (contacts). A voter that had granted its vote to a newer leader
// would have refused it, so no write a newer leader acknowledged can be missing from the
// index (raft's ReadIndex, thesis §6.4). raft.VerifyLeader makes every follower's
// heartbeat go out at once; its own verdict is not used, for two reasons found by
// integration/jepsen: it counts every follower's answer, non-voters (stand-bys) included,
// against a quorum of voters (pause-leader-standbys-behind on 5 members), and an answer
// to a heartbeat sent before the call confirms it too — a leader paused (SIGSTOP) with
// replies in its socket buffers, cut off, then resumed, served stale reads at once
// (pause-during-partition on 3 members). A barrier entry (committed by a majority of
// voters after the call) proved the same, at the cost of a log write and an fsync on
// every member per round; heartbeats cost one small RPC per follower.
func (s *Store) confirmLeadership(ctx context.Context, term uint64) error {
	since := time.Now()
	voters, err := s.voters()
	if err != nil {
		return s.mapRaftErr(err)
	}
	verdict := make(chan error, 1)
	f := s.raft.VerifyLeader()
	go func() { verdict <- f.Error() }()
	self := raft.ServerID(s.cfg.ID)
	for {
		ok, changed := s.ballot.contacts.quorum(self, voters, term, since)
		if ok {
			return nil
		}
		select {
		case <-changed:
		case err := <-verdict:
			if err != nil {
				return s.notLeader() // a read has no outcome to lose: ask the next leader
			}
			verdict = nil // it may say yes too early: keep waiting for contacts
		case <-s.closed:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("confirming leadership for a read: %w", ctx.Err())
		}
	}
}

// SpreadCommit makes the leader send every follower its commit index now, by appending a
// barrier entry (it does not wait for it): an idle leader tells followers that entries
// are committed only with its next replication message, every commit timeout, and a
// heartbeat does not carry the commit index. A follower that got a read index its replica
// has not reached (it holds the entries but does not know they are committed) asks for
// this (nodeagent/daemon/serve/read.go). Leader only; elsewhere it does nothing.
func (s *Store) SpreadCommit() {
	if s.checkOpen() == nil && s.raft.State() == raft.Leader {
		_ = s.raft.Barrier(spreadEnqueue)
	}
}

// spreadEnqueue bounds SpreadCommit's wait to hand its barrier to raft.
const spreadEnqueue = 100 * time.Millisecond

// confirmTimeout bounds one confirmation of leadership (a round of ReadIndex).
const confirmTimeout = 5 * time.Second

// voters are the voters of the latest raft configuration.
func (s *Store) voters() ([]raft.ServerID, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []raft.ServerID
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			out = append(out, srv.ID)
		}
	}
	return out, nil
}

// lastVisible returns the highest index <= index of an entry the FSM applies
// (command or configuration). The entries above it are no-ops for the
// database, and followers only learn an applied index from entries they apply.
//
// A read-only load asks about the same index round after round, so the last answer is
// kept for the leader's term: a leader never rewrites its own log, and entries at or
// below its commit index never change, but an uncommitted entry it held in an earlier
// term may have been replaced since.
func (s *Store) lastVisible(term, index uint64) uint64 {
	if v := s.visible.Load(); v != nil && v.term == term && v.index == index {
		return v.visible
	}
	visible := s.scanVisible(index)
	s.visible.Store(&visibleAt{term: term, index: index, visible: visible})
	return visible
}

// visibleAt is the last answer of lastVisible, in the leader's term.
type visibleAt struct{ term, index, visible uint64 }

// scanVisible is lastVisible's search of the log.
func (s *Store) scanVisible(index uint64) uint64 {
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
