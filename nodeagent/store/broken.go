package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// A member whose local storage fails (SQLite cannot commit, the raft log
// cannot store entries, an entry of an unknown codec version) is broken until
// it is reopened (Close, Open: the daemon does so by itself): its database no
// longer follows the log. Were it leader,
// every linearizable read and every write of the cluster would fail through
// it while raft kept it in charge. So a broken member hands leadership over
// and stands aside in elections (ballotTransport): it refuses leadership
// transfers to it, and its own vote requests fail while the cluster has had a
// leader within campaignPatience. It keeps answering other members' vote
// requests, which depend only on its raft log. As a last resort, after
// campaignPatience without a leader, it may stand again: it can hold the only
// copy of committed entries the healthy members lack (raft then elects no one
// else), and it hands leadership over as soon as it wins. See DESIGN.md.

// campaignPatience is how long a broken member waits without hearing from a
// leader before it stands for election itself: long enough for the healthy
// members to elect one of theirs several times over.
func (s *Store) campaignPatience() time.Duration {
	return 2*s.cfg.Timings.Heartbeat + 4*s.cfg.Timings.Election
}

// fault records the first local storage failure and starts stepping aside.
type fault struct {
	once  sync.Once
	mu    sync.Mutex
	err   error
	ended chan struct{} // closed once err is set
}

// get returns the recorded failure, nil if none.
func (f *fault) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Broken returns the error that broke this member's store (wrapping
// ErrBroken), or nil while it is healthy.
func (s *Store) Broken() error {
	if err := s.broken.get(); err != nil {
		return err
	}
	_, _, err := s.fsm.state()
	return err
}

// Breaks is closed once this member's store breaks (Broken then returns the cause), so
// that a watcher needs no polling.
func (s *Store) Breaks() <-chan struct{} { return s.broken.ended }

// breakWith marks the store broken (once) and steps aside in the background.
func (s *Store) breakWith(err error) {
	s.broken.once.Do(func() {
		s.broken.mu.Lock()
		s.broken.err = err
		s.broken.mu.Unlock()
		close(s.broken.ended)
		s.log.Error("this member's store is broken: handing leadership over and no longer standing for election until it is reopened", "error", err)
		go s.stepAside()
	})
}

// stepAside hands leadership over while this member leads, retrying every
// election timeout while no other voter can take it (unreachable, behind); in
// the meantime it refuses reads and writes as not leader. It runs when the
// store breaks and whenever a broken member wins an election.
func (s *Store) stepAside() {
	for s.raft.State() == raft.Leader {
		ctx, cancel := context.WithTimeout(context.Background(), 2*s.cfg.Timings.Election+time.Second)
		err := s.TransferLeadership(ctx)
		cancel()
		if err == nil {
			continue
		}
		s.log.Warn("broken member: handing leadership over failed; retrying", "error", err)
		select {
		case <-s.closed:
			return
		case <-time.After(s.cfg.Timings.Election):
		}
	}
}

// mayCampaign is nil when this member may ask for votes: it is healthy, or it
// is broken but the cluster has had no leader for campaignPatience.
func (s *Store) mayCampaign() error {
	err := s.Broken()
	if err == nil || time.Since(s.raft.LastContact()) > s.campaignPatience() {
		return nil
	}
	return fmt.Errorf("not standing for election: %w", err)
}

// ballotTransport is the raft transport of a member: once the member is
// broken, it refuses leadership transfers to it (TimeoutNow), and the vote and
// pre-vote requests it sends fail unless mayCampaign allows them.
type ballotTransport struct {
	*raft.NetworkTransport
	broken      func() error
	mayCampaign func() error
	rpcs        chan raft.RPC
	stop        <-chan struct{}
	progress    *progress     // followers' acknowledged log, as the answers show (progress.go)
	contacts    *contacts     // followers' latest accepted AppendEntries, by when it was sent (contact.go)
	appends     atomic.Uint64 // AppendEntries received (heartbeats included): idle cost, tested
	onContact   func()        // called on every AppendEntries received (heartbeats.go); set before raft starts
	// onHeartbeat is called on the leader for every heartbeat answered, with when it was
	// sent (rtt.go); set before raft starts.
	onHeartbeat func(id raft.ServerID, sent time.Time)
	// onConfiguration is called once raft has answered an RPC that may change its
	// configuration (an AppendEntries carrying a configuration entry, a snapshot); set
	// before raft starts.
	onConfiguration func()
	// commitLimit, when set, is the highest commit index an AppendEntries may tell a
	// follower: the leader's durable index (leadersync.go); set before raft starts.
	commitLimit func() uint64
}

// limitCommit lowers the commit index args tells a follower to commitLimit.
func (t *ballotTransport) limitCommit(args *raft.AppendEntriesRequest) {
	if t.commitLimit != nil {
		args.LeaderCommitIndex = min(args.LeaderCommitIndex, t.commitLimit())
	}
}

// received counts an AppendEntries (heartbeat or not) that arrived from a leader.
func (t *ballotTransport) received() {
	t.appends.Add(1)
	if t.onContact != nil {
		t.onContact()
	}
}

// newBallotTransport wraps nt and starts filtering its incoming RPCs.
func newBallotTransport(nt *raft.NetworkTransport, broken, mayCampaign func() error, stop <-chan struct{}) *ballotTransport {
	t := &ballotTransport{NetworkTransport: nt, broken: broken, mayCampaign: mayCampaign, rpcs: make(chan raft.RPC), stop: stop, progress: newProgress(), contacts: newContacts()}
	go t.filter(nt.Consumer())
	return t
}

// filter passes incoming RPCs to raft, answering a leadership transfer to a
// broken member with an error instead: raft would make it a candidate that
// cannot win and that keeps its old leader in mind, refusing other members'
// pre-votes.
func (t *ballotTransport) filter(in <-chan raft.RPC) {
	for {
		select {
		case rpc := <-in:
			if _, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
				t.received()
			}
			if t.onConfiguration != nil && carriesConfiguration(rpc.Command) {
				rpc = afterAnswer(rpc, t.onConfiguration, t.stop)
			}
			if _, ok := rpc.Command.(*raft.TimeoutNowRequest); ok {
				if err := t.broken(); err != nil {
					rpc.Respond(&raft.TimeoutNowResponse{}, fmt.Errorf("not taking leadership: %w", err))
					continue
				}
			}
			select {
			case t.rpcs <- rpc:
			case <-t.stop:
				return
			}
		case <-t.stop:
			return
		}
	}
}

// carriesConfiguration reports whether an incoming RPC may change raft's configuration.
func carriesConfiguration(cmd any) bool {
	switch c := cmd.(type) {
	case *raft.InstallSnapshotRequest:
		return true
	case *raft.AppendEntriesRequest:
		for _, e := range c.Entries {
			if e.Type == raft.LogConfiguration {
				return true
			}
		}
	}
	return false
}

// afterAnswer returns rpc with its answer passed on by a goroutine that first calls fn,
// once raft has answered and so has adopted the configuration the RPC carried.
func afterAnswer(rpc raft.RPC, fn func(), stop <-chan struct{}) raft.RPC {
	out := rpc.RespChan
	in := make(chan raft.RPCResponse, 1)
	rpc.RespChan = in
	go func() {
		select {
		case resp := <-in:
			fn()
			out <- resp // the transport's answer channel holds one
		case <-stop:
		}
	}()
	return rpc
}

// SetHeartbeatHandler implements raft.Transport, counting the heartbeats received.
func (t *ballotTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	if cb == nil {
		t.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	t.NetworkTransport.SetHeartbeatHandler(func(rpc raft.RPC) {
		t.received()
		cb(rpc)
	})
}

// Consumer implements raft.Transport.
func (t *ballotTransport) Consumer() <-chan raft.RPC { return t.rpcs }

// RequestVote implements raft.Transport.
func (t *ballotTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if err := t.mayCampaign(); err != nil {
		return err
	}
	return t.NetworkTransport.RequestVote(id, target, args, resp)
}

// RequestPreVote implements raft.WithPreVote.
func (t *ballotTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	if err := t.mayCampaign(); err != nil {
		return err
	}
	return t.NetworkTransport.RequestPreVote(id, target, args, resp)
}

// refuseBroken answers a leader-only operation on a broken member as "not
// leader" (nothing was applied), so the caller tries the next leader.
func (s *Store) refuseBroken() error {
	if err := s.Broken(); err != nil {
		return fmt.Errorf("%w (this member is stepping down: %w)", s.notLeader(), err)
	}
	return nil
}

// faultLog is the log store raft writes through: a failure to store entries
// (disk full, I/O error) breaks the member.
type faultLog struct {
	logStore
	onFail func(error)
}

// StoreLog implements raft.LogStore.
func (l faultLog) StoreLog(e *raft.Log) error {
	return l.check(l.logStore.StoreLog(e))
}

// StoreLogs implements raft.LogStore.
func (l faultLog) StoreLogs(es []*raft.Log) error {
	return l.check(l.logStore.StoreLogs(es))
}

// DeleteRange implements raft.LogStore. A failed truncation of the log's suffix breaks the
// member: raft keeps believing its log ends where it did, so the entries the leader sends
// next are looked up where the log may no longer have them ("failed to get log entry", for
// every append until a restart). A failed compaction of the head only leaves entries that a
// later snapshot drops.
func (l faultLog) DeleteRange(min, max uint64) error {
	err := l.logStore.DeleteRange(min, max)
	if err == nil {
		return nil
	}
	if first, ferr := l.logStore.FirstIndex(); ferr == nil && min <= first {
		return err
	}
	return l.check(err)
}

// IsMonotonic implements raft.MonotonicLogStore when the wrapped store does
// (raft-wal): raft must then clear the whole log after installing a snapshot.
func (l faultLog) IsMonotonic() bool {
	m, ok := l.logStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// check breaks the member on a failure to store entries.
func (l faultLog) check(err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%w: writing the raft log: %w", ErrBroken, err)
	l.onFail(err)
	return err
}
