package instances

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/schema"
	"orch/nodeagent/store"
)

// replica is the replicated database of a one-member cluster (real raft and SQLite) as the
// instances domain uses it: writes through raft, reads on the leader's replica.
type replica struct{ st *store.Store }

func (r replica) Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error) {
	return r.st.Exec(ctx, store.Request(stmts))
}

func (r replica) Query(ctx context.Context, sql string, args ...any) (db.Rows, error) {
	idx, err := r.st.ReadIndex(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.st.WaitApplied(ctx, idx); err != nil {
		return nil, err
	}
	return r.QueryLocal(ctx, sql, args...)
}

func (r replica) QueryLocal(ctx context.Context, sql string, args ...any) (db.Rows, error) {
	rows, err := r.st.DB().QueryContext(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return db.Scan(rows)
}

// oneMember is the member the tests' instances are placed on.
type oneMember struct{}

func (oneMember) Self() string { return "n1" }
func (oneMember) Online(context.Context) ([]db.Member, error) {
	return []db.Member{{Name: "n1", Address: "127.0.0.1:1"}}, nil
}
func (oneMember) RequireOnline(context.Context, ...string) error { return nil }

// newService bootstraps a one-member cluster with the schema and member n1, and returns the
// instances domain over it (no drivers, images or entities: the tests place and refuse,
// they do not start containers).
func newService(t *testing.T) *Service {
	t.Helper()
	return newServiceAt(t, len(schema.Updates))
}

// newServiceAt is newService on a database at schema version (the first updates only).
func newServiceAt(t *testing.T, version int) *Service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	layer, err := store.NewTCPLayer(addr)
	if err != nil {
		t.Fatal(err)
	}
	tm := store.DefaultTimings()
	tm.Heartbeat, tm.Election, tm.LeaderLease, tm.Commit = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(store.Config{Dir: t.TempDir(), ID: "n1", Address: addr, Stream: layer, Timings: tm, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	if err := st.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "n1 to lead", func() error {
		if !st.IsLeader() {
			return errors.New("not the leader")
		}
		return nil
	})
	var stmts []store.Statement
	for _, u := range schema.Updates[:version] {
		for _, sql := range strings.Split(u, ";") {
			if sql = strings.TrimSpace(sql); sql != "" {
				stmts = append(stmts, store.Statement{SQL: sql})
			}
		}
	}
	stmts = append(stmts, store.Statement{SQL: `INSERT INTO members(name, address) VALUES('n1', ?)`, Args: []any{addr}})
	if _, err := st.Exec(ctx, store.Request(stmts)); err != nil {
		t.Fatalf("schema and member n1: %v", err)
	}
	return New(Deps{DB: replica{st}, Members: oneMember{}, Events: noEvents{}, Log: log})
}

// noEvents drops lifecycle events.
type noEvents struct{}

func (noEvents) Lifecycle(string, string, map[string]any) {}

// call runs one profile request through the domain's routes.
func call(s *Service, method, path, body string) (int, api.Response) {
	mux := &muxRouter{mux: http.NewServeMux()}
	s.Routes(mux)
	req := httptest.NewRequest(method, path, bytes.NewReader([]byte(body)))
	rec := httptest.NewRecorder()
	mux.mux.ServeHTTP(rec, req)
	var resp api.Response
	_ = jsonDecode(rec.Body.Bytes(), &resp)
	return rec.Code, resp
}

// A launch reads its profiles, then writes the instance row; a profile deleted in between
// must not end up referenced by the new instance. The test runs the launch's steps around
// a real DELETE of the profile on a one-member cluster (real raft and SQLite).
func TestProfileDeletedDuringLaunch(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	for _, p := range []string{"p1", "p2"} {
		if code, resp := call(s, http.MethodPost, "/1.0/profiles", `{"name":"`+p+`"}`); code != http.StatusOK {
			t.Fatalf("creating profile %s: %d %s", p, code, resp.Error)
		}
	}

	if _, err := s.expand(ctx, []string{"p1"}, nil, nil); err != nil {
		t.Fatalf("launch reading p1: %v", err)
	}
	if code, resp := call(s, http.MethodDelete, "/1.0/profiles/p1", ""); code != http.StatusOK {
		t.Fatalf("deleting p1: %d %s", code, resp.Error)
	}
	_, err := s.placeInstance(ctx, api.InstancesPost{Name: "c1", Source: "img", Profiles: []string{"p1"}}, []string{"n1"})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != http.StatusNotFound {
		t.Fatalf("placing c1 with the deleted profile p1: err = %v, want 404 naming p1", err)
	}
	if rows, err := s.db.QueryLocal(ctx, `SELECT name FROM instances`); err != nil || len(rows) != 0 {
		t.Fatalf("instances after the refused launch: %v (err %v), want none", rows, err)
	}

	if _, err := s.placeInstance(ctx, api.InstancesPost{Name: "c2", Source: "img", Profiles: []string{"p2", "p2"}}, []string{"n1"}); err != nil {
		t.Fatalf("placing c2 with p2: %v", err)
	}
	if code, resp := call(s, http.MethodDelete, "/1.0/profiles/p2", ""); code != http.StatusConflict {
		t.Fatalf("deleting p2 used by c2: %d %s, want 409", code, resp.Error)
	}
	if code, _ := call(s, http.MethodDelete, "/1.0/profiles/nope", ""); code != http.StatusNotFound {
		t.Fatalf("deleting a missing profile: %d, want 404", code)
	}
}

// muxRouter registers routes without access checks and answers errors as the daemon does
// (the API error's code, 500 otherwise, in an error envelope).
type muxRouter struct{ mux *http.ServeMux }

func (m *muxRouter) Handle(pattern string, _ rest.Access, h rest.HandlerFunc) {
	m.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			code := http.StatusInternalServerError
			var ae *api.Error
			if errors.As(err, &ae) {
				code = ae.Code
			}
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(api.Response{Type: "error", Error: err.Error(), ErrorCode: code})
		}
	})
}

func jsonDecode(b []byte, v any) error { return json.Unmarshal(b, v) }
