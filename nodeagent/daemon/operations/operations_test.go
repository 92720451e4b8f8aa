package operations

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// member is one Manager served over HTTPS, as a member of a test cluster.
type member struct {
	name string
	m    *Manager
	srv  *httptest.Server
	evs  *recorder
}

// recorder records the events a Manager sends.
type recorder struct {
	mu  sync.Mutex
	ops []api.Operation
}

func (r *recorder) Send(typ string, meta any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if op, ok := meta.(api.Operation); ok && typ == api.EventTypeOperation {
		r.ops = append(r.ops, op)
	}
}

// cluster is the members of a test cluster: each lists all as ONLINE.
type cluster struct {
	ms      []*member
	mu      sync.Mutex
	clients map[string]*api.Client // pooled, as the daemon's peer clients
}

func (c *cluster) Online(context.Context) ([]db.Member, error) {
	var out []db.Member
	for _, m := range c.ms {
		out = append(out, db.Member{Name: m.name, Address: m.srv.Listener.Addr().String()})
	}
	return out, nil
}

// self is one member's view of the cluster.
type self struct {
	*cluster
	name string
}

func (s self) Self() string { return s.name }

// peers are clients of the test servers, pinned to their certificates.
type peers struct{ c *cluster }

func (p peers) Client(addr string) (*api.Client, error) {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	if cl, ok := p.c.clients[addr]; ok {
		return cl, nil
	}
	for _, m := range p.c.ms {
		if m.srv.Listener.Addr().String() == addr {
			cert := m.srv.Certificate()
			cl := api.NewTLSClient(addr, api.TLSConfig(m.srv.TLS.Certificates[0], api.Fingerprint(cert.Raw)))
			if p.c.clients == nil {
				p.c.clients = map[string]*api.Client{}
			}
			p.c.clients[addr] = cl
			return cl, nil
		}
	}
	return nil, errors.New("no member at " + addr)
}

// router mounts routes on a mux, answering errors as the daemon does (no access checks).
type router struct{ mux *http.ServeMux }

func (r router) Handle(pattern string, _ rest.Access, h rest.HandlerFunc) {
	r.mux.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
		if err := h(w, req); err != nil {
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

// newCluster starts n members.
func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{}
	for i := range n {
		name := "m" + string(rune('1'+i))
		evs := &recorder{}
		m := New(Deps{Members: self{c, name}, Peers: peers{c}, Events: evs, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		mux := http.NewServeMux()
		m.Routes(router{mux})
		srv := httptest.NewTLSServer(mux)
		t.Cleanup(srv.Close)
		c.ms = append(c.ms, &member{name: name, m: m, srv: srv, evs: evs})
	}
	return c
}

// client is an API client of member i.
func (c *cluster) client(t *testing.T, i int) *api.Client {
	cl, err := peers{c}.Client(c.ms[i].srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// start starts t on member i as if a request had.
func (c *cluster) start(t *testing.T, i int, task rest.Task) api.Operation {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/1.0/instances", nil)
	op, err := c.ms[i].m.Start(r, task)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestWaitFromAnotherMember: a task started on m1 is waited for through m2 and m3 (found
// by asking the others, forwarded), its result and its failure come back, and the
// operation events tell running then success.
func TestWaitFromAnotherMember(t *testing.T) {
	c := newCluster(t, 3)
	release := make(chan struct{})
	op := c.start(t, 0, rest.Task{Description: "Creating instance", Run: func(ctx context.Context, op rest.Op) error {
		<-release
		op.SetMetadata(map[string]any{"return": 7})
		return nil
	}})
	if op.StatusCode != api.Running || op.Location != "m1" || op.Class != api.OperationClassTask {
		t.Fatalf("started: %+v", op)
	}
	got, err := c.client(t, 1).Operation(ctx(t), op.ID)
	if err != nil || got.StatusCode != api.Running || got.Description != "Creating instance" {
		t.Fatalf("GET through m2: %+v %v", got, err)
	}
	close(release)
	final, err := c.client(t, 2).WaitOperation(ctx(t), op.ID)
	if err != nil || final.StatusCode != api.Success || final.Metadata["return"] != float64(7) {
		t.Fatalf("wait through m3: %+v %v", final, err)
	}
	evs := c.ms[0].evs
	evs.mu.Lock()
	defer evs.mu.Unlock()
	if len(evs.ops) < 2 || evs.ops[0].StatusCode != api.Running || evs.ops[len(evs.ops)-1].StatusCode != api.Success {
		t.Fatalf("operation events: %+v", evs.ops)
	}

	failing := c.start(t, 2, rest.Task{Run: func(context.Context, rest.Op) error { return errors.New("lxc-start failed: no rootfs") }})
	final, err = c.client(t, 0).WaitOperation(ctx(t), failing.ID)
	if err != nil || final.StatusCode != api.Failure || final.Err != "lxc-start failed: no rootfs" {
		t.Fatalf("failed task through m1: %+v %v", final, err)
	}
}

// TestCancelAndList: a task cancelled through another member ends Cancelled; the list
// through any member has every member's operations grouped by status.
func TestCancelAndList(t *testing.T) {
	c := newCluster(t, 2)
	op := c.start(t, 1, rest.Task{Run: func(ctx context.Context, _ rest.Op) error { <-ctx.Done(); return ctx.Err() }})
	other := c.start(t, 0, rest.Task{Run: func(ctx context.Context, _ rest.Op) error { <-ctx.Done(); return ctx.Err() }})
	ops, err := c.client(t, 0).Operations(ctx(t))
	if err != nil || len(ops) != 2 {
		t.Fatalf("list through m1: %+v %v", ops, err)
	}
	var byStatus map[string][]string
	if _, err := c.client(t, 1).Call(ctx(t), http.MethodGet, "/1.0/operations", nil, &byStatus, ""); err != nil ||
		len(byStatus["running"]) != 2 || !strings.HasPrefix(byStatus["running"][0], "/1.0/operations/") {
		t.Fatalf("recursion 0 through m2: %v %v", byStatus, err)
	}
	if err := c.client(t, 0).CancelOperation(ctx(t), op.ID); err != nil {
		t.Fatal(err)
	}
	final, err := c.client(t, 0).WaitOperation(ctx(t), op.ID)
	if err != nil || final.StatusCode != api.Cancelled {
		t.Fatalf("cancelled task: %+v %v", final, err)
	}
	if err := c.client(t, 1).CancelOperation(ctx(t), other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client(t, 1).Operation(ctx(t), "00000000-0000-4000-8000-000000000000"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("an unknown operation: %v", err)
	}
}

// TestTokenLifecycle: a token is cancelled by DELETE (its OnCancel runs), ends when it
// expires, and ends Success once Alive says it was used; a client decodes a token's
// metadata without waiting for it.
func TestTokenLifecycle(t *testing.T) {
	c := newCluster(t, 2)
	var cancelled sync.WaitGroup
	cancelled.Add(1)
	tok := c.start(t, 0, rest.Task{Class: api.OperationClassToken, Metadata: map[string]any{"secret": "s1"},
		OnCancel: func(context.Context) error { cancelled.Done(); return nil }})
	if !tok.MayCancel || tok.StatusCode != api.Running {
		t.Fatalf("token: %+v", tok)
	}
	if err := c.client(t, 1).CancelOperation(ctx(t), tok.ID); err != nil {
		t.Fatal(err)
	}
	cancelled.Wait()
	if got, err := c.client(t, 0).Operation(ctx(t), tok.ID); err != nil || got.StatusCode != api.Cancelled {
		t.Fatalf("revoked token: %+v %v", got, err)
	}

	expiring := c.start(t, 1, rest.Task{Class: api.OperationClassToken, ExpiresAt: time.Now().Add(200 * time.Millisecond)})
	if final, err := c.client(t, 0).WaitOperation(ctx(t), expiring.ID); err != nil || final.StatusCode != api.Cancelled || final.Err != "the token expired" {
		t.Fatalf("expired token: %+v %v", final, err)
	}

	used := false
	var mu sync.Mutex
	consumed := c.start(t, 0, rest.Task{Class: api.OperationClassToken, Alive: func(context.Context) bool { mu.Lock(); defer mu.Unlock(); return !used }})
	mu.Lock()
	used = true
	mu.Unlock()
	if got, err := c.client(t, 1).Operation(ctx(t), consumed.ID); err != nil || got.StatusCode != api.Success {
		t.Fatalf("used token: %+v %v", got, err)
	}
}

// TestTokenCancelledOnce: cancels of one token racing from both members (two clients
// redeeming it at once) — exactly one succeeds, the others are refused as ended.
func TestTokenCancelledOnce(t *testing.T) {
	c := newCluster(t, 2)
	for round := 0; round < 5; round++ {
		var cancels atomic.Int32
		tok := c.start(t, 0, rest.Task{Class: api.OperationClassToken,
			OnCancel: func(context.Context) error { cancels.Add(1); return nil }})
		const racers = 8
		errs := make(chan error, racers)
		for i := 0; i < racers; i++ {
			go func() { errs <- c.client(t, i%2).CancelOperation(ctx(t), tok.ID) }()
		}
		ok := 0
		for i := 0; i < racers; i++ {
			err := <-errs
			switch {
			case err == nil:
				ok++
			case !strings.Contains(err.Error(), "already used, revoked or expired"):
				t.Errorf("round %d: a losing cancel failed with %v", round, err)
			}
		}
		if ok != 1 || cancels.Load() != 1 {
			t.Fatalf("round %d: %d cancels succeeded and OnCancel ran %d times; want 1 and 1", round, ok, cancels.Load())
		}
	}
}

// TestSocketsThroughAnotherMember: the websockets of an operation on m1 are connected
// through m2 (the handshake is forwarded and the connection spliced), a wrong secret is
// refused, and the task sees what the client sends and the client what the task writes.
func TestSocketsThroughAnotherMember(t *testing.T) {
	c := newCluster(t, 2)
	op := c.start(t, 0, rest.Task{Class: api.OperationClassWebsocket, Sockets: []string{"0"},
		Run: func(ctx context.Context, op rest.Op) error {
			s := op.Socket(ctx, "0")
			if s == nil {
				return errors.New("no socket")
			}
			_, p, err := s.ReadMessage()
			if err != nil {
				return err
			}
			return s.WriteMessage(websocket.BinaryMessage, []byte(strings.ToUpper(string(p))))
		}})
	secret := op.Metadata["fds"].(map[string]string)["0"]
	m2 := c.ms[1].srv
	dialer := websocket.Dialer{TLSClientConfig: m2.Client().Transport.(*http.Transport).TLSClientConfig}
	base := "wss://" + m2.Listener.Addr().String() + "/1.0/operations/" + op.ID + "/websocket?secret="
	if _, resp, err := dialer.Dial(base+"wrong", nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a wrong secret: %v %v", resp, err)
	}
	conn, _, err := dialer.Dial(base+secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := conn.ReadMessage(); err != nil || string(p) != "HELLO" {
		t.Fatalf("through the spliced socket: %q %v", p, err)
	}
	if final, err := c.client(t, 1).WaitOperation(ctx(t), op.ID); err != nil || final.StatusCode != api.Success {
		t.Fatalf("websocket operation: %+v %v", final, err)
	}
}

// BenchmarkWaitThroughAnotherMember is one task started on m1 and waited for through m2
// (owner lookup cached after the first time; the wait forwarded), over HTTPS on loopback.
func BenchmarkWaitThroughAnotherMember(b *testing.B) {
	t := &testing.T{}
	c := newCluster(t, 2)
	defer func() {
		for _, m := range c.ms {
			m.srv.Close()
		}
	}()
	cl := c.client(t, 1)
	for b.Loop() {
		op := c.start(t, 0, rest.Task{Run: func(context.Context, rest.Op) error { return nil }})
		if final, err := cl.WaitOperation(context.Background(), op.ID); err != nil || final.StatusCode != api.Success {
			b.Fatalf("%+v %v", final, err)
		}
	}
}
