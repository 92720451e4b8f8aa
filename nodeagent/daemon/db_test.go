package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/daemon/serve"
	"orch/nodeagent/store"
)

// fakePeer is a member stand-in that presents the cluster certificate, counts the
// requests it receives and answers each with answer.
type fakePeer struct {
	addr  string
	calls atomic.Int32
}

func newFakePeer(t *testing.T, d *Daemon, answer func(w http.ResponseWriter, r *http.Request)) *fakePeer {
	t.Helper()
	p := &fakePeer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		answer(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{d.cluster.Load().tls}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p.addr = strings.TrimPrefix(srv.URL, "https://")
	return p
}

// answerError answers like writeError, with the not-applied mark when marked.
func answerError(code int, msg string, marked bool) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		if marked {
			w.Header().Set(rest.NotAppliedHeader, "1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(api.Response{Type: "error", Error: msg, ErrorCode: code})
	}
}

func answerOK(w http.ResponseWriter, _ *http.Request) {
	_ = writeOK(w, []store.Result{{RowsAffected: 1}}, "")
}

// hangUp reads the request and drops the connection without answering: the request may
// have been applied.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// A forwarded write moves on to the next member only when the first one certainly did not
// apply it: a 503 without the not-applied mark (the leader lost leadership mid-write, a
// middle hop lost its connection after sending) or a connection dropped after the request
// was sent must not be retried elsewhere, where it could be applied a second time.
func TestForwardedWriteRetriesOnlyWhenNotApplied(t *testing.T) {
	d := newFuzzDaemon(t)
	closed := freeLoopback(t) // nothing listens there: the dial fails
	cases := []struct {
		name      string
		first     func(http.ResponseWriter, *http.Request)
		path      string
		wantNext  bool
		wantInErr string
	}{
		{"503 maybe applied", answerError(503, "forwarding to x: EOF (the request may or may not have been applied)", false), "/internal/db/exec", false, "may or may not"},
		{"500 leadership lost", answerError(500, "leadership lost while the write was in flight", false), "/internal/db/exec", false, "leadership lost"},
		{"503 not leader", answerError(503, "not the raft leader (leader unknown)", true), "/internal/db/exec", true, ""},
		{"connection dropped after sending", hangUp, "/internal/db/exec", false, "may or may not have been applied"},
		{"412 conflict is final", answerError(412, "1 rows affected, expected 0", false), "/internal/db/exec", false, "conflict"},
		{"read after unmarked 503", answerError(503, "database unavailable", false), serve.QueryPath, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			first := newFakePeer(t, d, c.first)
			next := newFakePeer(t, d, answerOK)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out []store.Result
			body := serve.ExecRequest{Request: store.Request{storeStmt(`INSERT INTO config(key, value) VALUES ('user.x', '1')`)}}
			err := d.srv.PostFirst(ctx, []string{first.addr, next.addr}, c.path, body, &out, 1)
			if got := next.calls.Load(); (got == 1) != c.wantNext {
				t.Fatalf("next member got %d requests (want retried=%v); err %v", got, c.wantNext, err)
			}
			if first.calls.Load() != 1 {
				t.Fatalf("first member got %d requests", first.calls.Load())
			}
			if c.wantNext {
				if err != nil || len(out) != 1 {
					t.Fatalf("retried write: err %v, results %v", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantInErr) {
				t.Fatalf("error %v, want one mentioning %q", err, c.wantInErr)
			}
			if serve.KnownNotApplied(err) {
				t.Fatalf("error %v is marked not applied", err)
			}
		})
	}
	t.Run("dial failure", func(t *testing.T) {
		next := newFakePeer(t, d, answerOK)
		var out []store.Result
		if err := d.srv.PostFirst(context.Background(), []string{closed, next.addr}, "/internal/db/exec", serve.ExecRequest{}, &out, 1); err != nil || next.calls.Load() != 1 {
			t.Fatalf("err %v, next called %d times", err, next.calls.Load())
		}
	})
	t.Run("all refused stays marked", func(t *testing.T) {
		a := newFakePeer(t, d, answerError(503, "not the raft leader", true))
		err := d.srv.PostFirst(context.Background(), []string{closed, a.addr}, "/internal/db/exec", serve.ExecRequest{}, nil, 1)
		var ae *api.Error
		if !serve.KnownNotApplied(err) || !errors.As(err, &ae) || ae.Code != 503 {
			t.Fatalf("error %v (%T): want a 503 marked not applied", err, err)
		}
	})
}
