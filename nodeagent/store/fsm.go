package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// position is a log position: index and term of an entry.
type position struct{ index, term uint64 }

// outcome is the result of one Request as applied by the FSM.
type outcome struct {
	results []Result
	err     error
}

// entryResult is what ApplyBatch returns for one command entry: one outcome
// per request, in entry order. It reaches the batcher through the ApplyFuture.
type entryResult struct {
	outcomes []outcome
	err      error // the whole entry failed (corrupt data or broken database)
}

// fsm applies log entries to the global database through its only writer
// connection. Apply and ApplyBatch are called from raft's FSM goroutine only.
type fsm struct {
	log  *slog.Logger
	dir  string
	db   *sql.DB
	conn *sql.Conn

	mu       sync.Mutex
	applied  position             // last entry whose effects are in the database
	progress chan struct{}        // closed and replaced when applied changes
	broken   error                // set once a commit failed; nothing is applied after
	onBreak  func(error)          // called once, in its own goroutine, when broken is set
	restores atomic.Int64         // snapshots restored into the database (tests, stats)
	noArgs   map[string]*sql.Stmt // prepared statements without arguments (execNoArgs)
	// carefulPasses counts batches applied again with savepoints (tests).
	carefulPasses atomic.Int64
	// durable, when set, returns once the log entry at an index is durable in this
	// member's log (the leader's deferred syncs, leadersync.go); nil: always.
	durable func(index uint64) error
}

var _ raft.BatchingFSM = (*fsm)(nil)

// newFSM opens (or rebuilds) the database in dir and loads its applied position.
func newFSM(dir string, log *slog.Logger) (*fsm, error) {
	db, conn, err := openWriterOrRebuild(dir, log)
	if err != nil {
		return nil, err
	}
	f := &fsm{log: log, dir: dir, db: db, conn: conn, progress: make(chan struct{})}
	pos, err := f.readApplied()
	if err != nil {
		f.close()
		return nil, err
	}
	f.setApplied(pos)
	return f, nil
}

// close releases the writer connection.
func (f *fsm) close() error {
	for _, st := range f.noArgs {
		if st != nil {
			st.Close()
		}
	}
	return errors.Join(f.conn.Close(), f.db.Close())
}

// maxNoArgStmts bounds the prepared statements without arguments the FSM keeps.
const maxNoArgStmts = 32

// execNoArgs runs a statement without arguments as a prepared statement kept for the
// next time (go-sqlite3's statement cache only serves statements with arguments; without,
// every call parsed the SQL again: BEGIN and COMMIT per batch, PATCH /1.0's config version
// bump per request). Only statements that return no rows are kept: go-sqlite3 steps a
// statement once and leaves it pending while it has rows, which would hold a read open
// on the writer connection. FSM goroutine only.
func (f *fsm) execNoArgs(ctx context.Context, query string) (sql.Result, error) {
	st, known := f.noArgs[query]
	if !known {
		if rowless(query) {
			var err error
			if st, err = f.conn.PrepareContext(ctx, query); err != nil {
				return nil, err
			}
		}
		if f.noArgs == nil || len(f.noArgs) >= maxNoArgStmts {
			for _, old := range f.noArgs {
				if old != nil {
					old.Close()
				}
			}
			f.noArgs = map[string]*sql.Stmt{}
		}
		f.noArgs[query] = st // nil: run it unprepared every time
	}
	if st == nil {
		return f.conn.ExecContext(ctx, query)
	}
	return st.ExecContext(ctx)
}

// rowless reports whether a statement certainly returns no rows: transaction control, or
// an INSERT, UPDATE, DELETE or REPLACE without RETURNING.
func rowless(query string) bool {
	toks, err := lex(query)
	if err != nil || len(toks) == 0 || toks[0].kind != tokIdent {
		return false
	}
	if w := toks[0].text; w != "begin" && w != "commit" && !expectWords[w] {
		return false
	}
	for _, t := range toks {
		if t.kind == tokIdent && t.text == "returning" {
			return false
		}
	}
	return true
}

// readApplied reads the applied position stored in the database.
func (f *fsm) readApplied() (position, error) {
	var p position
	err := f.conn.QueryRowContext(context.Background(),
		"SELECT idx, term FROM "+appliedTable+" WHERE id = 1").Scan(&p.index, &p.term)
	if err != nil {
		return p, fmt.Errorf("reading %s: %w", appliedTable, err)
	}
	return p, nil
}

// writeApplied stores the applied position (inside the caller's transaction,
// or on its own when called outside one).
func (f *fsm) writeApplied(p position) error {
	_, err := f.conn.ExecContext(context.Background(),
		"UPDATE "+appliedTable+" SET idx = ?, term = ? WHERE id = 1", int64(p.index), int64(p.term))
	return err
}

// setApplied publishes a new applied position and wakes WaitApplied callers.
func (f *fsm) setApplied(p position) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = p
	close(f.progress)
	f.progress = make(chan struct{})
}

// state returns the applied position, a channel closed when it changes, and
// the broken error if any.
func (f *fsm) state() (position, <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.progress, f.broken
}

// breakWith marks the FSM broken: the database no longer follows the log.
func (f *fsm) breakWith(err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken == nil {
		f.broken = fmt.Errorf("%w: %w", ErrBroken, err)
		f.log.Error("global database failed to apply committed entries; restart to replay the log", "error", err)
		if f.onBreak != nil {
			go f.onBreak(f.broken)
		}
	}
	close(f.progress)
	f.progress = make(chan struct{})
	return f.broken
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch implements raft.BatchingFSM: every entry of the batch is applied
// in one SQLite transaction that also records the last applied position, so
// an entry is never applied twice (entries at or below the stored index are
// skipped) and never lost (a crash loses the transaction and the position
// together, and raft replays the entries).
//
// A request is all-or-nothing: its statements run inside a savepoint that a
// failure rolls back. Most requests succeed, and two more statements per
// request were a third of applying a batch, so the batch is first applied
// without savepoints; at the first request that fails the whole transaction is
// rolled back and the batch applied again with a savepoint per request. Both
// ways reach the same state and the same verdicts on every replica.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	cur, _, broken := f.state()
	if broken != nil {
		return fill(out, broken)
	}
	if f.durable != nil && len(logs) > 0 {
		if err := f.durable(logs[len(logs)-1].Index); err != nil {
			return fill(out, f.breakWith(err))
		}
	}
	last, err := f.applyInTx(logs, cur, out, false)
	if errors.Is(err, errRequestFailed) {
		f.carefulPasses.Add(1)
		clear(out)
		last, err = f.applyInTx(logs, cur, out, true)
	}
	if err != nil {
		return fill(out, f.breakWith(err))
	}
	if last != cur {
		f.setApplied(last)
	}
	return out
}

// errRequestFailed ends a pass without savepoints at a request that failed: the batch
// must be applied again with them.
var errRequestFailed = errors.New("a request failed: apply the batch with savepoints")

// applyInTx applies logs in one transaction, committed unless an error is returned (then
// rolled back): errRequestFailed from a pass without savepoints, or a local failure.
func (f *fsm) applyInTx(logs []*raft.Log, cur position, out []any, savepoints bool) (position, error) {
	ctx := context.Background()
	if _, err := f.execNoArgs(ctx, "BEGIN IMMEDIATE"); err != nil {
		return cur, err
	}
	last, err := f.applyLogs(ctx, logs, cur, out, savepoints)
	if err == nil && last != cur {
		err = f.writeApplied(last)
	}
	if err == nil {
		_, err = f.execNoArgs(ctx, "COMMIT")
	}
	if err != nil {
		_, _ = f.conn.ExecContext(ctx, "ROLLBACK")
		return cur, err
	}
	return last, nil
}

// applyLogs applies the entries after cur, filling out, and returns the new
// applied position. An error means a local (non-deterministic) failure or, without
// savepoints, errRequestFailed: the transaction must be rolled back.
func (f *fsm) applyLogs(ctx context.Context, logs []*raft.Log, cur position, out []any, savepoints bool) (position, error) {
	last := cur
	for i, l := range logs {
		if l.Index <= cur.index {
			continue // already in the database: replayed after a restart
		}
		if l.Type == raft.LogCommand {
			res, err := f.applyEntry(ctx, l, savepoints)
			if errors.Is(err, errRequestFailed) {
				return cur, err
			}
			if err != nil {
				return cur, fmt.Errorf("entry %d: %w", l.Index, err)
			}
			out[i] = res
		}
		last = position{l.Index, l.Term}
	}
	return last, nil
}

// applyEntry applies every request of one command entry, each in its own
// savepoint when savepoints is set. The returned error is a local failure, not a
// request's failure (but errRequestFailed without savepoints).
func (f *fsm) applyEntry(ctx context.Context, l *raft.Log, savepoints bool) (*entryResult, error) {
	reqs, err := decodeEntry(l.Data)
	if errors.Is(err, errUnknownVersion) {
		return nil, err // stop here: newer replicas apply this entry
	}
	if err != nil {
		f.log.Error("skipping undecodable log entry", "index", l.Index, "error", err)
		return &entryResult{err: err}, nil
	}
	res := &entryResult{outcomes: make([]outcome, len(reqs))}
	for i, req := range reqs {
		if !savepoints {
			if res.outcomes[i], err = f.applyBare(ctx, req); err != nil {
				return nil, err
			}
			continue
		}
		if res.outcomes[i], err = f.applyRequest(ctx, req); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// applyBare runs one request's statements without a savepoint; a request that fails
// returns errRequestFailed (its earlier statements are applied: the caller rolls back).
func (f *fsm) applyBare(ctx context.Context, req Request) (outcome, error) {
	o := outcome{results: make([]Result, 0, len(req))}
	for _, st := range req {
		r, err := f.execStatement(ctx, st)
		if err != nil && !isDeterministicErr(err) {
			return outcome{}, err
		}
		if err != nil {
			return outcome{}, errRequestFailed
		}
		o.results = append(o.results, r)
	}
	return o, nil
}

// applyRequest runs one request inside a savepoint: all statements or none.
func (f *fsm) applyRequest(ctx context.Context, req Request) (outcome, error) {
	if _, err := f.conn.ExecContext(ctx, "SAVEPOINT req"); err != nil {
		return outcome{}, err
	}
	o := outcome{results: make([]Result, 0, len(req))}
	for i, st := range req {
		r, err := f.execStatement(ctx, st)
		if err != nil && !isDeterministicErr(err) {
			return outcome{}, err
		}
		if err != nil {
			o = outcome{err: fmt.Errorf("statement %d: %w", i, err)}
			break
		}
		o.results = append(o.results, r)
	}
	if o.err != nil {
		if _, err := f.conn.ExecContext(ctx, "ROLLBACK TO req"); err != nil {
			return outcome{}, err
		}
	}
	_, err := f.conn.ExecContext(ctx, "RELEASE req")
	return o, err
}

// execStatement runs one statement and checks its Expect.
func (f *fsm) execStatement(ctx context.Context, st Statement) (Result, error) {
	var res sql.Result
	var err error
	if len(st.Args) == 0 {
		res, err = f.execNoArgs(ctx, st.SQL)
	} else {
		res, err = f.conn.ExecContext(ctx, st.SQL, st.Args...)
	}
	if err != nil {
		return Result{}, err
	}
	var r Result
	r.RowsAffected, _ = res.RowsAffected()
	r.LastInsertID, _ = res.LastInsertId()
	if st.Expect != nil && r.RowsAffected != *st.Expect {
		return r, fmt.Errorf("%d rows affected, expected %d: %w", r.RowsAffected, *st.Expect, ErrConflict)
	}
	return r, nil
}

// fill sets every element of out to err.
func fill(out []any, err error) []any {
	for i := range out {
		out[i] = &entryResult{err: err}
	}
	return out
}

// Restore implements raft.FSM: it replaces the database content with the
// snapshot's through SQLite's backup API.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := restoreDB(f.conn, f.dir, rc); err != nil {
		return fmt.Errorf("restoring snapshot: %w", err)
	}
	pos, err := f.readApplied()
	if err != nil {
		return err
	}
	f.setApplied(pos)
	f.restores.Add(1)
	return nil
}
