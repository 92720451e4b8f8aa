package store

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// Suffrages reported in Server.Suffrage.
const (
	// SuffrageVoter is a member that votes and counts for the quorum.
	SuffrageVoter = "voter"
	// SuffrageNonvoter is a stand-by: a full replica without a vote.
	SuffrageNonvoter = "nonvoter"
	// SuffrageStaging is raft's transitional state (not used by this package).
	SuffrageStaging = "staging"
)

// Server is one member of the raft configuration.
type Server struct {
	// ID is the raft server ID (member name).
	ID string
	// Address is the raft address host:port.
	Address string
	// Suffrage is SuffrageVoter or SuffrageNonvoter.
	Suffrage string
}

// Servers returns the latest raft configuration known to this node.
func (s *Store) Servers() ([]Server, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.mapRaftErr(err)
	}
	var out []Server
	for _, srv := range f.Configuration().Servers {
		out = append(out, Server{ID: string(srv.ID), Address: string(srv.Address), Suffrage: suffrage(srv.Suffrage)})
	}
	return out, nil
}

// suffrage names a raft suffrage.
func suffrage(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return SuffrageVoter
	case raft.Nonvoter:
		return SuffrageNonvoter
	default:
		return SuffrageStaging
	}
}

// Leader returns the current leader's ID and address, empty if unknown.
func (s *Store) Leader() (id, address string) {
	addr, sid := s.raft.LeaderWithID()
	return string(sid), string(addr)
}

// IsLeader reports whether this node is the raft leader.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// LeaderChanges returns a new subscription to this node's leadership: the
// channel receives the current state at once, then true/false on every change
// (if the reader falls behind, only the latest state is kept). It is closed by
// Close.
func (s *Store) LeaderChanges() <-chan bool { return s.lead.subscribe() }

// AddVoter adds (or promotes) id at addr as a voter. Leader only.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	s.forgetProgressOfNew(id)
	return s.change(ctx, "adding voter "+id, func() raft.Future {
		return s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0)
	})
}

// AddNonvoter adds id at addr as a non-voting stand-by replica (a voter keeps
// its vote). Leader only.
func (s *Store) AddNonvoter(ctx context.Context, id, addr string) error {
	s.forgetProgressOfNew(id)
	return s.change(ctx, "adding non-voter "+id, func() raft.Future {
		return s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 0)
	})
}

// forgetProgressOfNew drops what is known of id's log when id is not in the configuration
// (a wiped member that rejoins holds nothing of what it acknowledged before).
func (s *Store) forgetProgressOfNew(id string) {
	servers, err := s.Servers()
	if err != nil {
		return
	}
	for _, srv := range servers {
		if srv.ID == id {
			return
		}
	}
	s.ballot.progress.forget(raft.ServerID(id))
}

// DemoteVoter turns voter id into a non-voter. Leader only.
func (s *Store) DemoteVoter(ctx context.Context, id string) error {
	return s.change(ctx, "demoting "+id, func() raft.Future {
		return s.raft.DemoteVoter(raft.ServerID(id), 0, 0)
	})
}

// RemoveServer removes id from the configuration. Leader only.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	return s.change(ctx, "removing "+id, func() raft.Future {
		return s.raft.RemoveServer(raft.ServerID(id), 0, 0)
	})
}

// TransferLeadership hands leadership to the most up-to-date voter and
// returns once it has been handed over. Leader only.
func (s *Store) TransferLeadership(ctx context.Context) error {
	return s.change(ctx, "transferring leadership", s.raft.LeadershipTransfer)
}

// change runs a leader-only raft operation and waits for it.
func (s *Store) change(ctx context.Context, what string, op func() raft.Future) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := waitFuture(ctx, op()); err != nil {
		return fmt.Errorf("%s: %w", what, s.mapRaftErr(err))
	}
	s.batch.quietAfterWrite() // the members learn it is committed at once, as for a write
	return nil
}
