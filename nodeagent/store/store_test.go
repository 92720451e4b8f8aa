package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBootstrapAndLeadership(t *testing.T) {
	n := newNode(t, "solo", nil)
	s := n.store
	if has, err := s.HasState(); err != nil || has {
		t.Fatalf("fresh node HasState = %v, %v; want false", has, err)
	}
	changes := s.LeaderChanges()
	if v := <-changes; v {
		t.Fatalf("first LeaderChanges value = true before bootstrap")
	}
	ctx := testContext(t, 10*time.Second)
	if err := s.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if !s.IsLeader() {
		t.Fatalf("not leader after Bootstrap returned")
	}
	select {
	case v := <-changes:
		if !v {
			t.Fatalf("LeaderChanges sent false after bootstrap")
		}
	case <-ctx.Done():
		t.Fatalf("no LeaderChanges notification")
	}
	if id, addr := s.Leader(); id != "solo" || addr != n.addr {
		t.Fatalf("Leader() = %q %q, want solo %s", id, addr, n.addr)
	}
	if err := s.Bootstrap(ctx); !errors.Is(err, ErrHasState) {
		t.Fatalf("second bootstrap: %v, want ErrHasState", err)
	}
	servers, err := s.Servers()
	if err != nil || len(servers) != 1 || servers[0] != (Server{ID: "solo", Address: n.addr, Suffrage: SuffrageVoter}) {
		t.Fatalf("Servers() = %+v, %v", servers, err)
	}
	res, err := s.Exec(ctx, Request{
		{SQL: "CREATE TABLE kv (k TEXT PRIMARY KEY, v)"},
		{SQL: "INSERT INTO kv VALUES (?, ?), (?, ?)", Args: []any{"a", int64(1), "b", 2.5}},
	})
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	if res[1].RowsAffected != 2 || res[1].LastInsertID != 2 {
		t.Fatalf("results = %+v", res)
	}
	if got := dump(t, n, "kv"); got != "a 1\nb 2.5\n" {
		t.Fatalf("rows = %q", got)
	}
	idx, term := s.LastIndexTerm()
	if idx == 0 || term == 0 || s.AppliedIndex() != idx {
		t.Fatalf("LastIndexTerm = %d %d, AppliedIndex = %d", idx, term, s.AppliedIndex())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for range changes {
		// Drain the last state; the loop ends when Close closed the channel.
	}
	if _, err := s.Exec(ctx, stmt("INSERT INTO kv VALUES ('c', 3)")); !errors.Is(err, ErrClosed) {
		t.Fatalf("exec after close: %v, want ErrClosed", err)
	}
	n.store = nil
}

func TestRestartSingleNodeKeepsRowsAndLeads(t *testing.T) {
	n := newNode(t, "solo", nil)
	ctx := testContext(t, 20*time.Second)
	if err := n.store.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if _, err := n.store.Exec(ctx, stmt("CREATE TABLE t (x INTEGER)")); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := n.store.Exec(ctx, stmt("INSERT INTO t VALUES (?)", i)); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := n.store.LastIndexTerm()
	n.stop()
	n.open()
	if err := n.store.lead.waitLeader(ctx, n.store.closed); err != nil {
		t.Fatalf("restarted single voter never leads: %v", err)
	}
	if after, _ := n.store.LastIndexTerm(); after < before {
		t.Fatalf("applied index went back from %d to %d", before, after)
	}
	if got := count(t, n, "SELECT count(*) FROM t"); got != 20 {
		t.Fatalf("rows after restart = %d, want 20", got)
	}
	if _, err := n.store.Exec(ctx, stmt("INSERT INTO t VALUES (20)")); err != nil {
		t.Fatal(err)
	}
	if got := count(t, n, "SELECT count(*) FROM t"); got != 21 {
		t.Fatalf("rows = %d, want 21", got)
	}
}

func TestExecRejectsBadRequests(t *testing.T) {
	n := newNode(t, "solo", nil)
	ctx := testContext(t, 10*time.Second)
	if err := n.store.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	// A write applied first: the new leader's own first entry may still be on its way.
	if _, err := n.store.Exec(ctx, stmt("CREATE TABLE IF NOT EXISTS t (x INTEGER)")); err != nil {
		t.Fatal(err)
	}
	before := n.store.AppliedIndex()
	for _, req := range []Request{
		nil,
		stmt("INSERT INTO t VALUES (random())"),
		stmt("INSERT INTO t VALUES (datetime('now'))"),
		stmt("INSERT INTO t VALUES (?)", []byte("x")),
		stmt("INSERT INTO t VALUES (?)", time.Now()),
		stmt("COMMIT"),
		stmt("INSERT INTO t VALUES (1); DELETE FROM t"),
	} {
		if _, err := n.store.Exec(ctx, req); !errors.Is(err, ErrBadArg) {
			t.Errorf("Exec(%v) = %v, want ErrBadArg", req, err)
		}
	}
	if after := n.store.AppliedIndex(); after != before {
		t.Fatalf("rejected requests entered the log: applied %d -> %d", before, after)
	}
}

func TestExpectConflictRollsBackRequest(t *testing.T) {
	n := newNode(t, "solo", nil)
	ctx := testContext(t, 10*time.Second)
	if err := n.store.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	s := n.store
	if _, err := s.Exec(ctx, Request{
		{SQL: "CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER, version INTEGER)"},
		{SQL: "INSERT INTO acct VALUES (1, 100, 1)"},
	}); err != nil {
		t.Fatal(err)
	}
	stale := Request{
		{SQL: "INSERT INTO acct VALUES (2, 0, 1)"},
		{SQL: "UPDATE acct SET balance = 50, version = 2 WHERE id = 1 AND version = ?", Args: []any{7}, Expect: Int64(1)},
	}
	if _, err := s.Exec(ctx, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if got := dump(t, n, "acct"); got != "1 100 1\n" {
		t.Fatalf("after conflict rows = %q, want the request rolled back", got)
	}
	fresh := Request{{SQL: "UPDATE acct SET balance = 50, version = 2 WHERE id = 1 AND version = 1", Expect: Int64(1)}}
	if res, err := s.Exec(ctx, fresh); err != nil || res[0].RowsAffected != 1 {
		t.Fatalf("fresh update: %+v, %v", res, err)
	}
	if got := dump(t, n, "acct"); got != "1 50 2\n" {
		t.Fatalf("rows = %q", got)
	}
}

func TestExecContextCancelledBeforeQueue(t *testing.T) {
	n := newNode(t, "solo", nil)
	ctx := testContext(t, 10*time.Second)
	if err := n.store.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := n.store.Exec(cctx, stmt("CREATE TABLE t (x)")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec with cancelled ctx = %v", err)
	}
}
