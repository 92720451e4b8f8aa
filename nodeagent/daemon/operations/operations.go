// Package operations owns LXD's background operations on one member: the operation
// objects (task, websocket and token classes) other domains start through rest.Task, the
// async answer, their websockets, waiting on them and cancelling them, and
// /1.0/operations — cluster wide.
//
// Cluster wide by fan-out, not a replicated table: each member keeps its own operations in
// memory (they die with the process that runs them, as the work does); listing asks every
// ONLINE member for its operations, and a request about an operation this member does not
// have is forwarded to the member that has it, found by asking the others. LXD also
// records every operation in its database with its member; here that would cost a raft
// write per start, stop or exec for a record that is useless once the member that runs the
// work is gone, and the lookup a record would save is one parallel round of a few peers.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package operations

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// Sentinel errors.
var (
	// ErrNotFound is an operation no member has.
	ErrNotFound = errors.New("operation not found")
	// ErrCannotCancel is a cancel of an operation that may not be cancelled.
	ErrCannotCancel = errors.New("this operation cannot be cancelled")
	// ErrTokenEnded is a cancel of a token that was already used, revoked or expired:
	// a token is cancelled once, which is what makes redeeming it a one-time act.
	ErrTokenEnded = errors.New("this token was already used, revoked or expired")
	// ErrBadSecret is a websocket connection with a secret the operation did not give.
	ErrBadSecret = errors.New("no websocket of this operation has this secret")
)

// Retention is how long a finished operation stays visible (LXD keeps one 5 s).
const Retention = 5 * time.Second

// Members is the membership as operations see it.
type Members interface {
	// Self is this member's name.
	Self() string
	// Online are the ONLINE members (this one included).
	Online(ctx context.Context) ([]db.Member, error)
}

// Peers reaches other members.
type Peers interface {
	// Client is a client of the member at addr (cluster certificate).
	Client(addr string) (*api.Client, error)
}

// Events sends events to /1.0/events listeners.
type Events interface {
	// Send publishes an event of type typ with meta as its metadata.
	Send(typ string, meta any)
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
}

// Deps are what a Manager is built from.
type Deps struct {
	Members Members
	Peers   Peers
	Events  Events
	Now     func() time.Time
	Log     *slog.Logger
	// Keep keeps this member's tokens across its restarts (nil: they end with the process).
	Keep Keeper
}

// Keeper keeps the token operations a member issued (task Kept set), so that a token handed
// out still works, and is listed and revocable, after the member restarts (see Restore).
type Keeper interface {
	KeepToken(id string, saved []byte) error
	DropToken(id string) error
}

// savedToken is what a Keeper keeps of a token operation.
type savedToken struct {
	Kept        string              `json:"kept"`
	Description string              `json:"description"`
	Resources   map[string][]string `json:"resources"`
	Metadata    map[string]any      `json:"metadata"`
	CreatedAt   time.Time           `json:"created_at"`
	ExpiresAt   time.Time           `json:"expires_at"`
}

// Manager is the operations of one member.
type Manager struct {
	Deps
	mu  sync.Mutex
	ops map[string]*operation
	// owners remembers which member had an operation this member asked about.
	owners sync.Map // id -> address
}

// New builds an empty manager.
func New(d Deps) *Manager {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Manager{Deps: d, ops: map[string]*operation{}}
}

// operation is one operation of this member.
type operation struct {
	m      *Manager
	task   rest.Task
	done   chan struct{}
	cancel context.CancelFunc

	mu      sync.Mutex
	view    api.Operation
	claimed bool              // a token's cancel has begun (only the first one proceeds)
	secrets map[string]string // secret -> fd
	sockets map[string]chan rest.Socket
}

// Start starts t as an operation of this member and returns it as the async answer shows it.
// The work runs detached from r (a client that goes away does not cancel it).
func (m *Manager) Start(r *http.Request, t rest.Task) (api.Operation, error) {
	id, err := newID()
	if err != nil {
		return api.Operation{}, err
	}
	if t.Class == "" {
		t.Class = api.OperationClassTask
	}
	now := m.Now().UTC()
	if t.Kept != "" && m.Keep != nil {
		saved, err := json.Marshal(savedToken{Kept: t.Kept, Description: t.Description, Resources: t.Resources,
			Metadata: t.Metadata, CreatedAt: now, ExpiresAt: t.ExpiresAt})
		if err == nil {
			err = m.Keep.KeepToken(id, saved)
		}
		if err != nil { // a token that would not survive a restart is not handed out
			return api.Operation{}, fmt.Errorf("keeping the token: %w", err)
		}
	}
	return m.start(context.WithoutCancel(r.Context()), id, now, t)
}

// Restore starts again a token operation a Keeper kept (same id, same creation time), with
// the task rebuild makes of it: ok false (the token was used, revoked or expired while the
// member was down) drops it instead.
func (m *Manager) Restore(id string, saved []byte, rebuild func(kept string, meta map[string]any, expires time.Time) (rest.Task, bool)) error {
	var st savedToken
	if err := json.Unmarshal(saved, &st); err != nil {
		return fmt.Errorf("kept token %s: %w", id, err)
	}
	t, ok := rebuild(st.Kept, st.Metadata, st.ExpiresAt)
	if !ok || (!st.ExpiresAt.IsZero() && !m.Now().Before(st.ExpiresAt)) {
		if m.Keep == nil {
			return nil
		}
		return m.Keep.DropToken(id)
	}
	t.Class, t.Kept, t.Description, t.Resources, t.Metadata, t.ExpiresAt = api.OperationClassToken, st.Kept, st.Description, st.Resources, st.Metadata, st.ExpiresAt
	_, err := m.start(context.Background(), id, st.CreatedAt, t)
	return err
}

// start makes t the operation id of this member, created at now.
func (m *Manager) start(parent context.Context, id string, now time.Time, t rest.Task) (api.Operation, error) {
	op := &operation{m: m, task: t, done: make(chan struct{}), sockets: map[string]chan rest.Socket{}, secrets: map[string]string{}}
	op.view = api.Operation{ID: id, Class: t.Class, Description: t.Description, CreatedAt: now, UpdatedAt: now,
		Status: api.Running.String(), StatusCode: api.Running, Resources: t.Resources, Metadata: maps.Clone(t.Metadata),
		MayCancel: t.Class == api.OperationClassToken || t.Run != nil, Location: m.Members.Self()}
	if op.view.Metadata == nil {
		op.view.Metadata = map[string]any{}
	}
	if len(t.Sockets) > 0 {
		fds := map[string]string{}
		for _, fd := range t.Sockets {
			s, err := newID()
			if err != nil {
				return api.Operation{}, err
			}
			fds[fd], op.secrets[s] = s, fd
			op.sockets[fd] = make(chan rest.Socket, 1)
		}
		op.view.Metadata["fds"] = fds
	}
	ctx, cancel := context.WithCancel(parent)
	op.cancel = cancel
	m.mu.Lock()
	m.ops[id] = op
	m.mu.Unlock()
	m.Events.Send(api.EventTypeOperation, op.snapshot())
	switch {
	case t.Run != nil:
		go op.run(ctx)
	case !t.ExpiresAt.IsZero():
		go op.expire(t.ExpiresAt)
	}
	return op.snapshot(), nil
}

// run does the work and records its outcome.
func (op *operation) run(ctx context.Context) {
	defer op.cancel()
	err := op.task.Run(ctx, op)
	switch {
	case err == nil:
		op.finish(api.Success, "")
	case ctx.Err() != nil:
		op.finish(api.Cancelled, err.Error())
	default:
		op.finish(api.Failure, err.Error())
	}
}

// expire ends a token's operation at its expiry. It does not run OnCancel: the token
// stays where it is kept, so that presenting it later is refused as expired (saying so),
// not as never issued.
func (op *operation) expire(at time.Time) {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		op.finish(api.Cancelled, "the token expired")
	case <-op.done:
	}
}

// finish ends the operation once (later calls do nothing) and forgets it after Retention.
func (op *operation) finish(code api.StatusCode, msg string) {
	op.mu.Lock()
	if op.view.StatusCode.IsFinal() {
		op.mu.Unlock()
		return
	}
	op.view.StatusCode, op.view.Status, op.view.Err = code, code.String(), msg
	op.view.UpdatedAt = op.m.Now().UTC()
	op.view.MayCancel = false
	close(op.done)
	op.mu.Unlock()
	if op.task.Kept != "" && op.m.Keep != nil {
		if err := op.m.Keep.DropToken(op.view.ID); err != nil {
			op.m.Log.Warn("forgetting an ended token", "operation", op.view.ID, "err", err)
		}
	}
	op.m.Events.Send(api.EventTypeOperation, op.snapshot())
	time.AfterFunc(Retention, func() {
		op.m.mu.Lock()
		delete(op.m.ops, op.view.ID)
		op.m.mu.Unlock()
	})
}

// snapshot is a copy of the operation's view.
func (op *operation) snapshot() api.Operation {
	op.mu.Lock()
	defer op.mu.Unlock()
	v := op.view
	v.Metadata = maps.Clone(op.view.Metadata)
	return v
}

// SetMetadata merges kv into the metadata (rest.Op).
func (op *operation) SetMetadata(kv map[string]any) {
	op.mu.Lock()
	maps.Copy(op.view.Metadata, kv)
	op.view.UpdatedAt = op.m.Now().UTC()
	op.mu.Unlock()
	op.m.Events.Send(api.EventTypeOperation, op.snapshot())
}

// Socket waits for the websocket fd (rest.Op).
func (op *operation) Socket(ctx context.Context, fd string) rest.Socket {
	ch := op.sockets[fd]
	if ch == nil {
		return nil
	}
	select {
	case s := <-ch:
		return s
	case <-ctx.Done():
		return nil
	}
}

// refresh ends a token that was used elsewhere (its Alive says so).
func (op *operation) refresh(ctx context.Context) {
	if op.task.Alive == nil || op.snapshot().StatusCode.IsFinal() {
		return
	}
	if !op.task.Alive(ctx) {
		op.finish(api.Success, "")
	}
}

// cancelOp cancels: a token runs its OnCancel, a task's context ends. Only the first
// cancel of a token proceeds; later (or concurrent) ones get ErrTokenEnded, so that two
// clients redeeming one token at once cannot both succeed.
func (op *operation) cancelOp(ctx context.Context) error {
	if op.task.Class == api.OperationClassToken {
		if err := op.claim(); err != nil {
			return err
		}
	}
	v := op.snapshot()
	if v.StatusCode.IsFinal() {
		return nil
	}
	if !v.MayCancel {
		return ErrCannotCancel
	}
	if op.task.Class == api.OperationClassToken || op.task.Run == nil {
		if op.task.OnCancel != nil {
			if err := op.task.OnCancel(ctx); err != nil {
				op.mu.Lock()
				op.claimed = false // not cancelled: another cancel may try again
				op.mu.Unlock()
				return err
			}
		}
		op.finish(api.Cancelled, "")
		return nil
	}
	op.mu.Lock()
	op.view.StatusCode, op.view.Status = api.Cancelling, api.Cancelling.String()
	op.mu.Unlock()
	op.cancel()
	return nil
}

// claim marks a running token as being cancelled, once.
func (op *operation) claim() error {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.claimed || op.view.StatusCode.IsFinal() {
		return ErrTokenEnded
	}
	op.claimed = true
	return nil
}

// local returns this member's operation id, refreshed.
func (m *Manager) local(ctx context.Context, id string) (*operation, bool) {
	m.mu.Lock()
	op, ok := m.ops[id]
	m.mu.Unlock()
	if ok {
		op.refresh(ctx)
	}
	return op, ok
}

// List is this member's operations (tokens refreshed), oldest first.
func (m *Manager) List(ctx context.Context) []api.Operation {
	m.mu.Lock()
	ops := make([]*operation, 0, len(m.ops))
	for _, op := range m.ops {
		ops = append(ops, op)
	}
	m.mu.Unlock()
	out := make([]api.Operation, 0, len(ops))
	for _, op := range ops {
		op.refresh(ctx)
		out = append(out, op.snapshot())
	}
	sortOps(out)
	return out
}

// newID is a random UUID (version 4), as LXD's operation ids.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
