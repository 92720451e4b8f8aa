package events

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// alone is a member without peers.
type alone struct{}

func (alone) Self() string                                { return "m1" }
func (alone) Online(context.Context) ([]db.Member, error) { return []db.Member{{Name: "m1"}}, nil }
func (alone) Local(context.Context) ([]db.Member, error)  { return []db.Member{{Name: "m1"}}, nil }
func (alone) Client(string) (*api.Client, error)          { return nil, nil }

func newHub() *Hub {
	return New(Deps{Members: alone{}, Peers: alone{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// next is the next event s receives (within a second).
func next(t *testing.T, s *sub) api.Event {
	t.Helper()
	select {
	case b := <-s.ch:
		var ev api.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
	return api.Event{}
}

// TestWrapSendsOnSuccessOnly: a wrapped create sends its lifecycle event with the body's
// name once it succeeded; a failure, an answer forwarded from another member and an
// unlisted route send none; a listener of another type gets nothing.
func TestWrapSendsOnSuccessOnly(t *testing.T) {
	h := newHub()
	life := h.subscribe(map[string]bool{api.EventTypeLifecycle: true})
	logs := h.subscribe(map[string]bool{api.EventTypeLogging: true})
	ok := func(w http.ResponseWriter, r *http.Request) error { return rest.WriteOK(w, nil, "") }
	post := func(h rest.HandlerFunc, body string) {
		r := httptest.NewRequest(http.MethodPost, "/1.0/profiles", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		_ = h(httptest.NewRecorder(), r)
	}
	post(h.Wrap("POST /1.0/profiles", ok), `{"name":"web"}`)
	ev := next(t, life)
	var lc api.EventLifecycle
	_ = json.Unmarshal(ev.Metadata, &lc)
	if lc.Action != "profile-created" || lc.Source != "/1.0/profiles/web" || ev.Location != "m1" {
		t.Fatalf("event: %+v %+v", ev, lc)
	}
	post(h.Wrap("POST /1.0/profiles", func(http.ResponseWriter, *http.Request) error { return rest.Conflict("exists") }), `{"name":"web"}`)
	post(h.Wrap("POST /1.0/profiles", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set(SentHeader, "m2") // the leader's answer, copied back
		return rest.WriteOK(w, nil, "")
	}), `{"name":"web"}`)
	post(h.Wrap("POST /1.0/unlisted", ok), `{"name":"x"}`)
	select {
	case b := <-life.ch:
		t.Fatalf("unexpected event %s", b)
	case b := <-logs.ch:
		t.Fatalf("a logging listener got %s", b)
	default:
	}
}

// TestTeeSendsLogLines: a log line through Tee is a logging event with its attributes.
func TestTeeSendsLogLines(t *testing.T) {
	h := newHub()
	s := h.subscribe(map[string]bool{api.EventTypeLogging: true})
	log := slog.New(h.Tee(slog.NewTextHandler(io.Discard, nil))).With("member", "node3")
	log.Warn("member removed", "force", true)
	var lg api.EventLogging
	_ = json.Unmarshal(next(t, s).Metadata, &lg)
	if lg.Message != "member removed" || lg.Level != "warn" || lg.Context["member"] != "node3" || lg.Context["force"] != "true" {
		t.Fatalf("logging event: %+v", lg)
	}
}
