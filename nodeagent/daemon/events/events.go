// Package events owns /1.0/events: the hub every domain publishes its lifecycle, operation
// and logging events on, the websocket LXD's clients listen on (`lxc monitor`, and every
// `lxc` command that waits for an operation), and making it cluster wide: a client
// connected to any member gets every ONLINE member's events. As LXD, members listen to
// each other; here the member a client is connected to opens, for that client, one
// stream (GET /internal/events, JSON lines) to each other ONLINE member before it
// completes the client's handshake, so that no event of an operation the client starts
// afterwards, wherever it runs, is missed.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// Members is the membership as events see it.
type Members interface {
	// Self is this member's name.
	Self() string
	// Online are the ONLINE members (this one included).
	Online(ctx context.Context) ([]db.Member, error)
	// Local are the members as this member's replica has them.
	Local(ctx context.Context) ([]db.Member, error)
}

// Peers reaches other members.
type Peers interface {
	// Client is a client of the member at addr (cluster certificate).
	Client(addr string) (*api.Client, error)
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
}

// Deps are what a Hub is built from.
type Deps struct {
	Members Members
	Peers   Peers
	Now     func() time.Time
	Log     *slog.Logger
}

// queueLen is how many events a slow listener may lag behind before it is dropped.
const queueLen = 1024

// Hub delivers this member's events to its listeners.
type Hub struct {
	Deps
	mu   sync.Mutex
	subs map[*sub]struct{}
}

// sub is one listener: the event types it wants (nil: all) and its queue.
type sub struct {
	types map[string]bool
	ch    chan []byte
	gone  chan struct{}
	once  sync.Once
}

// New builds a hub without listeners.
func New(d Deps) *Hub {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Hub{Deps: d, subs: map[*sub]struct{}{}}
}

// Send publishes an event of this member (operations.Events).
func (h *Hub) Send(typ string, meta any) {
	raw, err := json.Marshal(meta)
	if err != nil {
		h.Log.Warn("event metadata", "type", typ, "err", err)
		return
	}
	ev := api.Event{Type: typ, Timestamp: h.Now().UTC(), Metadata: raw, Location: h.Members.Self(), Project: "default"}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	h.deliver(typ, b)
}

// Lifecycle publishes a lifecycle event: action ("instance-started") on source
// ("/1.0/instances/c1").
func (h *Hub) Lifecycle(action, source string, ctx map[string]any) {
	h.Send(api.EventTypeLifecycle, api.EventLifecycle{Action: action, Source: source, Context: ctx})
}

// deliver queues an encoded event to every listener of its type; a listener whose queue
// is full is dropped (its connection ends, as LXD drops a slow listener).
func (h *Hub) deliver(typ string, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.types != nil && !s.types[typ] {
			continue
		}
		select {
		case s.ch <- b:
		default:
			delete(h.subs, s)
			s.close()
		}
	}
}

// subscribe adds a listener of types (nil: all).
func (h *Hub) subscribe(types map[string]bool) *sub {
	s := &sub{types: types, ch: make(chan []byte, queueLen), gone: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// unsubscribe removes a listener.
func (h *Hub) unsubscribe(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
	s.close()
}

func (s *sub) close() { s.once.Do(func() { close(s.gone) }) }
