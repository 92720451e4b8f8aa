// Package store is the cluster's global state: one SQLite database replicated
// with hashicorp/raft. Every raft voter and non-voter keeps a full replica; the
// FSM applies batches of SQL statements deterministically, coalescing
// concurrent writes into one log entry. See DESIGN.md for the reasons behind
// the log store, sync settings, coalescing and snapshot scheme.
package store

import (
	"errors"
	"fmt"
)

// Sentinel errors returned (wrapped) by the store.
var (
	// ErrNotLeader is returned by leader-only operations on a non-leader. The
	// concrete error is a *NotLeaderError carrying the leader's ID and address
	// when known.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrConflict is returned when a statement's Expect does not match the
	// rows it affected; the whole Request was rolled back.
	ErrConflict = errors.New("conflict: rows affected differ from expected")
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("store closed")
	// ErrBadArg is returned for requests rejected before they enter the log:
	// unsupported argument types, non-deterministic SQL, transaction control.
	ErrBadArg = errors.New("bad argument")
	// ErrLeadershipLost is returned when this node lost leadership while a
	// write was in flight: the write may or may not have been committed, so it
	// must not be retried blindly (unlike ErrNotLeader, which means "not
	// applied").
	ErrLeadershipLost = errors.New("leadership lost while the write was in flight; outcome unknown")
	// ErrHasState is returned by Bootstrap when the node already has raft state.
	ErrHasState = errors.New("raft state already exists")
	// ErrBroken is returned once the local database failed to commit an
	// applied entry, or the local raft log failed to store entries, or an
	// entry was written by a newer codec version: the store must be closed and
	// opened again (it then replays the log; the daemon does it by itself, see
	// nodeagent/daemon/repair.go). A broken member hands leadership over and
	// stops standing for election (see DESIGN.md, "A broken member").
	ErrBroken = errors.New("local database failed to commit; the store must be reopened (the daemon reopens it by itself)")
	// ErrOutcomeUnknown is returned for a write that may or may not have been
	// committed: this member's database broke while the write was in flight,
	// but the other members may have applied it. It must not be retried
	// blindly; read the state to find out.
	ErrOutcomeUnknown = errors.New("outcome unknown: the write may have been committed")
)

// NotLeaderError is the concrete ErrNotLeader: it names the current leader
// when this node knows it, so a caller can forward the request.
type NotLeaderError struct {
	// LeaderID is the raft server ID of the leader, empty if unknown.
	LeaderID string
	// LeaderAddr is the raft address of the leader, empty if unknown.
	LeaderAddr string
}

// Error implements error.
func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" && e.LeaderAddr == "" {
		return ErrNotLeader.Error() + " (leader unknown)"
	}
	return fmt.Sprintf("%s (leader is %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
