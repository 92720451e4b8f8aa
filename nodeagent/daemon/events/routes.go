package events

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"orch/nodeagent/daemon/rest"
)

// peerConnectTimeout bounds opening a member's stream when a client connects.
const peerConnectTimeout = 3 * time.Second

// Routes registers /1.0/events and the members' internal stream.
func (h *Hub) Routes(r Router) {
	r.Handle("GET /1.0/events", rest.Trusted, h.getEvents)
	r.Handle("GET /internal/events", rest.Member, h.getInternal)
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// types reads ?type=a,b (none: every type).
func types(r *http.Request) map[string]bool {
	v := r.URL.Query().Get("type")
	if v == "" {
		return nil
	}
	out := map[string]bool{}
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out[t] = true
		}
	}
	return out
}

// getEvents is GET /1.0/events[?type=…]: the websocket of every ONLINE member's events.
func (h *Hub) getEvents(w http.ResponseWriter, r *http.Request) error {
	ts := types(r)
	s := h.subscribe(ts)
	defer h.unsubscribe(s)
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	merged := make(chan []byte, queueLen)
	h.followPeers(ctx, r.URL.RawQuery, merged)
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil // the upgrader answered
	}
	defer conn.Close()
	go func() { // the client sends nothing we use; its close or error ends the stream
		defer cancel()
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for {
		var b []byte
		select {
		case b = <-s.ch:
		case b = <-merged:
		case <-s.gone:
			return nil
		case <-ctx.Done():
			return nil
		}
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			return nil
		}
	}
}

// refollowEvery is how often a client's member looks, in its replica, for members whose
// stream it lacks (one that joined, or restarted and ended its stream).
const refollowEvery = time.Second

// followPeers opens a stream of each other ONLINE member's events (with query's filter)
// into out, and returns once each has answered or failed; until ctx ends it then opens the
// streams of members that join or come back.
func (h *Hub) followPeers(ctx context.Context, query string, out chan<- []byte) {
	f := &following{hub: h, query: query, out: out, names: map[string]bool{}}
	f.round(ctx, true)
	go func() {
		t := time.NewTicker(refollowEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.round(ctx, false)
			}
		}
	}()
}

// following is the streams of one client's member.
type following struct {
	hub   *Hub
	query string
	out   chan<- []byte
	mu    sync.Mutex
	names map[string]bool // members whose stream is open
}

// round opens the streams of the members that have none: the first (wait: until each
// answered or failed) of the ONLINE members, the later ones of every member this
// member's replica knows (no leader round trip each second; an unreachable one fails).
func (f *following) round(ctx context.Context, wait bool) {
	list := f.hub.Members.Local
	if wait {
		list = f.hub.Members.Online
	}
	ms, err := list(ctx)
	if err != nil {
		f.hub.Log.Warn("events: members", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		f.mu.Lock()
		skip := m.Name == f.hub.Members.Self() || f.names[m.Name]
		f.names[m.Name] = true
		f.mu.Unlock()
		if skip {
			continue
		}
		wg.Add(1)
		go func() {
			f.hub.followPeer(ctx, m.Name, m.Address, f.query, f.out, wg.Done)
			f.mu.Lock()
			delete(f.names, m.Name)
			f.mu.Unlock()
		}()
	}
	if wait {
		wg.Wait()
	}
}

// followPeer streams one member's events into out; connected is called once the stream
// is open or failed.
func (h *Hub) followPeer(ctx context.Context, name, addr, query string, out chan<- []byte, connected func()) {
	var once sync.Once
	defer once.Do(connected)
	c, err := h.Peers.Client(addr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(peerConnectTimeout, cancel) // only until the stream is open
	path := "/internal/events"
	if query != "" {
		path += "?" + query
	}
	resp, err := c.Raw(ctx, http.MethodGet, path, nil, nil)
	if !timer.Stop() && err == nil {
		resp.Body.Close()
		err = context.DeadlineExceeded
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		if err == nil {
			resp.Body.Close()
		}
		h.Log.Warn("events: following member", "member", name, "err", err) // retried every refollowEvery
		return
	}
	defer resp.Body.Close()
	once.Do(connected)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		b := append([]byte(nil), sc.Bytes()...)
		select {
		case out <- b:
		case <-ctx.Done():
			return
		}
	}
}

// getInternal is GET /internal/events: this member's events as JSON lines, until the
// caller goes away.
func (h *Hub) getInternal(w http.ResponseWriter, r *http.Request) error {
	s := h.subscribe(types(r))
	defer h.unsubscribe(s)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil
	}
	for {
		select {
		case b := <-s.ch:
			if _, err := w.Write(append(b, '\n')); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		case <-s.gone:
			return nil
		case <-r.Context().Done():
			return nil
		}
	}
}
