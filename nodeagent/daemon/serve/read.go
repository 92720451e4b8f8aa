package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Linearizable reads. The leader confirms it still leads (store.ReadIndex) and reads its
// replica. A voter or stand-by asks the leader for a read index (ReadIndexPath: the leader
// confirms its leadership for it as for its own reads, counting an asking voter that sent
// its term in the quorum, store.ReadIndexFor), waits until its own replica has
// applied that index, and reads locally: one small round trip instead of the query and its
// rows, and the leader's CPU is spent on one confirmation per round instead of every
// query. Concurrent readers of a member share one round trip (store.Rounds). A member
// that holds no replica the leader keeps up to date (a spare), or whose replica does not
// catch up in time, has the query forwarded to the leader as before (QueryPath).

// ReadIndexPath is the internal endpoint that answers a read index to a follower.
const ReadIndexPath = "/internal/db/readindex"

// QueryPath is the internal read endpoint: a read may be retried on any member.
const QueryPath = "/internal/db/query"

// isRead reports whether path is an internal read, which may be retried on another member.
func isRead(path string) bool { return path == QueryPath || path == ReadIndexPath }

const (
	// readIndexTimeout bounds one round trip for a read index (as the leader's own bound on
	// confirming its leadership).
	readIndexTimeout = 5 * time.Second
	// catchUpLimit bounds how long a follower waits for its replica to reach a read index
	// before it forwards the query to the leader instead (a member far behind, installing
	// a snapshot, or dropped from the configuration without knowing it).
	catchUpLimit = time.Second
	// nudgeAfter is how long a follower waits for its replica before it asks for another
	// read index: a follower learns that entries are committed from the leader's next
	// replication message: the barrier the leader appends once its writes pause for 20 ms,
	// or the commit timeout (2 s) when idle; a round whose follower is behind makes the
	// leader send one at once (store.SpreadCommit).
	nudgeAfter = 10 * time.Millisecond
)

// errNoReplica says this member must have its read served by the leader.
var errNoReplica = errors.New("this member's replica is not kept up to date by the leader")

type queryRequest struct {
	SQL  string `json:"sql"`
	Args []any  `json:"args,omitempty"`
}

// UnmarshalJSON keeps integer arguments exact.
func (q *queryRequest) UnmarshalJSON(b []byte) error {
	var st store.Statement
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	q.SQL, q.Args = st.SQL, st.Args
	return nil
}

// readIndexRequest names the member asking, so that the leader can tell whether it keeps
// that member's replica up to date, and what its replica has applied: when that is below
// the read index, the leader spreads its commit index at once (store.SpreadCommit) rather
// than leave the follower to learn it from the next replication message.
type readIndexRequest struct {
	Member  string `json:"member"`
	Applied uint64 `json:"applied,omitempty"`
}

// readTermHeader carries the asking member's raft term, read after every read the round
// serves began (store.ReadIndexFor: the leader counts that voter in the quorum that
// confirms its leadership). A header, not a field of readIndexRequest: a leader of an
// older version refuses unknown fields and ignores unknown headers; a member that
// forwards the request drops it, and the leader then confirms with a heartbeat round.
const readTermHeader = "X-Orch-Read-Term"

// readIndexAnswer is the leader's answer: the index to wait for, and whether the asking
// member is a voter or stand-by in the leader's configuration.
type readIndexAnswer struct {
	Index   uint64 `json:"index"`
	Replica bool   `json:"replica"`
}

// Query runs a linearizable read on this member's replica once it holds every write
// acknowledged before the call; see the comment at the top of this file.
func (s *Server) Query(ctx context.Context, sql string, args ...any) (db.Rows, error) {
	st := s.Members.Store()
	if st == nil {
		return nil, s.Members.NoStore()
	}
	err := s.consistent(ctx, st)
	if errors.Is(err, errNoReplica) {
		var rows db.Rows
		err = s.toLeaderWaiting(ctx, QueryPath, queryRequest{SQL: sql, Args: args}, nil, &rows)
		if errors.Is(err, errBecameLeader) {
			return s.Query(ctx, sql, args...)
		}
		return normaliseRows(rows), err
	}
	if err != nil {
		return nil, err
	}
	return s.QueryLocal(ctx, sql, args...)
}

// Fresh returns once this member's replica holds every write acknowledged before the call,
// with the replica's state then: a read of the replica (QueryLocal) is then linearizable,
// and what was computed from a read at the same db.Replica is still current (db.Memo). A
// member whose reads are forwarded to the leader gets the zero Replica: it reads with
// Query.
func (s *Server) Fresh(ctx context.Context) (db.Replica, error) {
	st := s.Members.Store()
	if st == nil {
		return db.Replica{}, s.Members.NoStore()
	}
	err := s.consistent(ctx, st)
	if errors.Is(err, errNoReplica) {
		return db.Replica{}, nil
	}
	if err != nil {
		return db.Replica{}, err
	}
	return db.ReplicaOf(st), nil
}

// consistent returns once this member's replica holds every write acknowledged before the
// call, or errNoReplica when the read must be forwarded to the leader.
func (s *Server) consistent(ctx context.Context, st *store.Store) error {
	idx, err := st.ReadIndex(ctx)
	if err == nil {
		return st.WaitApplied(ctx, idx)
	}
	if !errors.Is(err, store.ErrNotLeader) {
		return err
	}
	if !st.HoldsReplica(s.Members.Name()) || st.Broken() != nil || !st.FedByLeader() {
		// A broken replica no longer follows the log, and one the leader is not feeding
		// now (a member just restarted) may not for a while: the leader answers.
		return errNoReplica
	}
	return s.catchUp(ctx, st)
}

// catchUp asks the leader for a read index and waits until the local replica reaches it,
// asking again (which makes the leader replicate its commit index) while it waits.
func (s *Server) catchUp(ctx context.Context, st *store.Store) error {
	give := time.Now().Add(catchUpLimit)
	for {
		idx, err := s.leaderIndex(ctx)
		if err != nil {
			return err
		}
		if st.AppliedIndex() >= idx {
			return nil // the usual case: no timer to arm for the nudge
		}
		wctx, cancel := context.WithTimeout(ctx, nudgeAfter)
		err = st.WaitApplied(wctx, idx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return err
		case !errors.Is(err, context.DeadlineExceeded):
			return errNoReplica // the replica broke or closed meanwhile: the leader answers
		case time.Now().After(give):
			return errNoReplica
		}
	}
}

// leaderIndex is a read index from the leader, shared with every reader of this member
// that waits for one (store.Rounds).
func (s *Server) leaderIndex(ctx context.Context) (uint64, error) {
	return s.remoteReads.Do(ctx)
}

// askLeaderIndex is one round of leaderIndex: a round trip to the leader.
func (s *Server) askLeaderIndex(ctx context.Context) (uint64, error) {
	req := readIndexRequest{Member: s.Members.Name()}
	var extra http.Header
	if st := s.Members.Store(); st != nil {
		req.Applied = st.AppliedIndex()
		extra = http.Header{readTermHeader: {strconv.FormatUint(st.Term(), 10)}}
	}
	var ans readIndexAnswer
	err := s.toLeaderWaiting(ctx, ReadIndexPath, req, extra, &ans)
	if st := s.Members.Store(); st != nil && errors.Is(err, errBecameLeader) {
		return st.ReadIndex(ctx)
	}
	if isNotFound(err) {
		return 0, errNoReplica // a leader of an older version: it answers the query itself
	}
	if err != nil {
		return 0, err
	}
	if !ans.Replica {
		return 0, errNoReplica
	}
	return ans.Index, nil
}

// postReadIndex answers a follower's read index: confirmed leadership, then the index
// every write acknowledged so far is at or below.
func (s *Server) postReadIndex(w http.ResponseWriter, r *http.Request) error {
	var req readIndexRequest
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	st := s.Members.Store()
	if st == nil {
		return s.Members.NoStore()
	}
	idx, err := readIndexFor(r, st, req.Member)
	if errors.Is(err, store.ErrNotLeader) {
		var ans readIndexAnswer
		if err := s.forwardOnce(r, ReadIndexPath, req, &ans); err != nil {
			return err
		}
		return rest.WriteOK(w, ans, "")
	}
	if err != nil {
		return err
	}
	if req.Applied < idx {
		st.SpreadCommit()
	}
	return rest.WriteOK(w, readIndexAnswer{Index: idx, Replica: st.HoldsReplica(req.Member)}, "")
}

// readIndexFor is the read index for a follower's request: counting the asking member in
// the quorum when it sent its term (readTermHeader), with a heartbeat round otherwise.
func readIndexFor(r *http.Request, st *store.Store, member string) (uint64, error) {
	term, err := strconv.ParseUint(r.Header.Get(readTermHeader), 10, 64)
	if err != nil || term == 0 {
		return st.ReadIndex(r.Context())
	}
	return st.ReadIndexFor(r.Context(), member, term)
}

// postQuery runs a forwarded read on the leader (from a member without a replica), or
// forwards it on.
func (s *Server) postQuery(w http.ResponseWriter, r *http.Request) error {
	var req queryRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		return rest.BadRequest("request body: %v", err)
	}
	st := s.Members.Store()
	if st == nil {
		return s.Members.NoStore()
	}
	idx, err := st.ReadIndex(r.Context())
	if errors.Is(err, store.ErrNotLeader) {
		var rows db.Rows
		if err := s.forwardOnce(r, QueryPath, req, &rows); err != nil {
			return err
		}
		return rest.WriteOK(w, rows, "")
	}
	if err != nil {
		return err
	}
	if err := st.WaitApplied(r.Context(), idx); err != nil {
		return err
	}
	rows, err := s.QueryLocal(r.Context(), req.SQL, req.Args...)
	if err != nil {
		return rest.BadRequest("%v", err)
	}
	return rest.WriteOK(w, rows, "")
}

// isNotFound reports an answer of a member that does not know an endpoint (an older binary).
func isNotFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == http.StatusNotFound
}
