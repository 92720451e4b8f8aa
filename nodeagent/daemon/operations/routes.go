package operations

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// localHeader marks a request a member forwarded to the operation's member: it answers
// from its own operations only.
const localHeader = "X-Orch-Operation-Local"

// peerTimeout bounds one member's answer when listing or looking up.
const peerTimeout = 5 * time.Second

// Routes registers /1.0/operations and the members' internal view of their operations.
func (m *Manager) Routes(r Router) {
	r.Handle("GET /1.0/operations", rest.Trusted, m.getOperations)
	r.Handle("GET /1.0/operations/{id}", rest.Trusted, m.onMember(m.getOperation))
	r.Handle("DELETE /1.0/operations/{id}", rest.Trusted, m.onMember(m.deleteOperation))
	r.Handle("GET /1.0/operations/{id}/wait", rest.Trusted, m.onMember(m.waitOperation))
	r.Handle("GET /1.0/operations/{id}/websocket", rest.Trusted, m.onMember(m.connectSocket))
	r.Handle("GET /internal/operations", rest.Member, m.getInternal)
	r.Handle("GET /internal/operations/{id}", rest.Member, m.getInternalOne)
}

// opHandler handles a request about an operation of this member.
type opHandler func(w http.ResponseWriter, r *http.Request, op *operation) error

// onMember runs h on the member that has the {id} operation: here, or forwarded there.
func (m *Manager) onMember(h opHandler) rest.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if op, ok := m.local(r.Context(), id); ok {
			return h(w, r, op)
		}
		if r.Header.Get(localHeader) != "" {
			return rest.NotFound("%v: %s on member %s", ErrNotFound, id, m.Members.Self())
		}
		addr, err := m.owner(r.Context(), id)
		if err != nil {
			return err
		}
		return m.forward(w, r, addr)
	}
}

// owner finds the address of the member that has operation id.
func (m *Manager) owner(ctx context.Context, id string) (string, error) {
	if a, ok := m.owners.Load(id); ok {
		return a.(string), nil
	}
	peers, err := m.peers(ctx)
	if err != nil {
		return "", err
	}
	found := make(chan string, len(peers))
	var wg sync.WaitGroup
	for _, addr := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var op api.Operation
			if err := m.ask(ctx, addr, "/internal/operations/"+id, &op); err == nil {
				found <- addr
			}
		}()
	}
	go func() { wg.Wait(); close(found) }()
	if addr, ok := <-found; ok {
		m.owners.Store(id, addr)
		time.AfterFunc(time.Minute, func() { m.owners.Delete(id) })
		return addr, nil
	}
	return "", rest.NotFound("%v: %s (asked every online member)", ErrNotFound, id)
}

// peers are the ONLINE members' addresses but this one's.
func (m *Manager) peers(ctx context.Context) ([]string, error) {
	ms, err := m.Members.Online(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mem := range ms {
		if mem.Name != m.Members.Self() {
			out = append(out, mem.Address)
		}
	}
	return out, nil
}

// ask GETs path of the member at addr into out.
func (m *Manager) ask(ctx context.Context, addr, path string, out any) error {
	c, err := m.Peers.Client(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	return c.CallHeaders(ctx, http.MethodGet, path, nil, out, nil)
}

// getOperations is GET /1.0/operations: every ONLINE member's operations, grouped by
// status ("running", "success", …) as LXD does; recursion=1 gives objects, else URLs.
func (m *Manager) getOperations(w http.ResponseWriter, r *http.Request) error {
	ops := m.List(r.Context())
	if r.Header.Get(localHeader) == "" {
		ops = append(ops, m.remoteOps(r.Context())...)
	}
	sortOps(ops)
	recursive := r.URL.Query().Get("recursion") != "" && r.URL.Query().Get("recursion") != "0"
	if recursive {
		out := map[string][]api.Operation{}
		for _, op := range ops {
			k := strings.ToLower(op.Status)
			out[k] = append(out[k], op)
		}
		return rest.WriteOK(w, out, "")
	}
	out := map[string][]string{}
	for _, op := range ops {
		k := strings.ToLower(op.Status)
		out[k] = append(out[k], "/1.0/operations/"+op.ID)
	}
	return rest.WriteOK(w, out, "")
}

// remoteOps are the other ONLINE members' operations; a member that does not answer is
// left out (and logged).
func (m *Manager) remoteOps(ctx context.Context) []api.Operation {
	peers, err := m.peers(ctx)
	if err != nil {
		m.Log.Warn("listing operations: members", "err", err)
		return nil
	}
	var mu sync.Mutex
	var out []api.Operation
	var wg sync.WaitGroup
	for _, addr := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ops []api.Operation
			if err := m.ask(ctx, addr, "/internal/operations", &ops); err != nil {
				m.Log.Warn("listing operations", "member", addr, "err", err)
				return
			}
			mu.Lock()
			out = append(out, ops...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (m *Manager) getInternal(w http.ResponseWriter, r *http.Request) error {
	return rest.WriteOK(w, m.List(r.Context()), "")
}

func (m *Manager) getInternalOne(w http.ResponseWriter, r *http.Request) error {
	op, ok := m.local(r.Context(), r.PathValue("id"))
	if !ok {
		return rest.NotFound("%v: %s on member %s", ErrNotFound, r.PathValue("id"), m.Members.Self())
	}
	return rest.WriteOK(w, op.snapshot(), "")
}

func (m *Manager) getOperation(w http.ResponseWriter, r *http.Request, op *operation) error {
	return rest.WriteOK(w, op.snapshot(), "")
}

// deleteOperation is DELETE /1.0/operations/ID: cancel it.
func (m *Manager) deleteOperation(w http.ResponseWriter, r *http.Request, op *operation) error {
	if err := op.cancelOp(r.Context()); err != nil {
		if errors.Is(err, ErrCannotCancel) {
			return rest.BadRequest("operation %s: %v", op.view.ID, err)
		}
		if errors.Is(err, ErrTokenEnded) {
			return rest.Conflict("operation %s: %v", op.view.ID, err)
		}
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// waitOperation is GET /1.0/operations/ID/wait?timeout=N: the operation once it ended, or
// as it is after N seconds (-1 or none: until it ends).
func (m *Manager) waitOperation(w http.ResponseWriter, r *http.Request, op *operation) error {
	timeout := -1
	if v := r.URL.Query().Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return rest.BadRequest("timeout %q is not a number of seconds", v)
		}
		timeout = n
	}
	var expired <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-op.done:
	case <-expired:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	return rest.WriteOK(w, op.snapshot(), "")
}

// sortOps orders operations by creation time, then id.
func sortOps(ops []api.Operation) {
	sort.Slice(ops, func(i, j int) bool {
		if !ops[i].CreatedAt.Equal(ops[j].CreatedAt) {
			return ops[i].CreatedAt.Before(ops[j].CreatedAt)
		}
		return ops[i].ID < ops[j].ID
	})
}

// Find is the ONLINE members' running token operations whose metadata match says yes
// (a certificate add token found by its secret).
func (m *Manager) Find(ctx context.Context, match func(api.Operation) bool) (api.Operation, bool) {
	for _, op := range append(m.List(ctx), m.remoteOps(ctx)...) {
		if op.Class == api.OperationClassToken && op.StatusCode == api.Running && match(op) {
			return op, true
		}
	}
	return api.Operation{}, false
}

// Cancel cancels operation id wherever it is (a used certificate token).
func (m *Manager) Cancel(ctx context.Context, id string) error {
	if op, ok := m.local(ctx, id); ok {
		return op.cancelOp(ctx)
	}
	addr, err := m.owner(ctx, id)
	if err != nil {
		return err
	}
	c, err := m.Peers.Client(addr)
	if err != nil {
		return err
	}
	if err := c.CallHeaders(ctx, http.MethodDelete, "/1.0/operations/"+id, nil, nil, http.Header{localHeader: {"1"}}); err != nil {
		return fmt.Errorf("cancelling operation %s on %s: %w", id, addr, err)
	}
	return nil
}
