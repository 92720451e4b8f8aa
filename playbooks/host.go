package playbooks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
)

// hostState is everything the engine tracks about one host during a run.
// Only the goroutine running the host's current task touches it, except
// conn (shared by delegation) which has its own lock.
type hostState struct {
	host Host
	// facts hold set_fact and register results; they outlive plays.
	facts map[string]any
	// failed and unreachable hosts leave the play and later plays.
	failed, unreachable bool
	// rescuable marks a failure inside a block that has a rescue section.
	rescuable bool
	// ended is set by meta: end_host, for the current play.
	ended bool
	// notified handlers, for the current play.
	notified map[*Task]bool
	// view is the host's resolved variables for the current play; replaced,
	// never modified, so that hostvars snapshots stay valid.
	view map[string]any
	// dirty means facts changed since view was built.
	dirty bool
	// outside caches the host's hostvars entry while it is not in the play.
	outside map[string]any

	connMu  sync.Mutex
	conn    Conn
	connErr error
}

func newHostState(h Host) *hostState {
	if h.Vars == nil {
		h.Vars = map[string]any{}
	}
	return &hostState{host: h, facts: map[string]any{}, notified: map[*Task]bool{}}
}

func (h *hostState) active() bool { return !h.failed && !h.unreachable && !h.ended }

// setFacts merges facts into the host's facts.
func (h *hostState) setFacts(facts map[string]any) {
	if len(facts) == 0 {
		return
	}
	maps.Copy(h.facts, facts)
	// Facts named ansible_X are also ansible_facts.X, as in Ansible.
	var af map[string]any
	for k, v := range facts {
		name, ok := strings.CutPrefix(k, "ansible_")
		if !ok || k == "ansible_facts" {
			continue
		}
		if af == nil {
			old, _ := h.facts["ansible_facts"].(map[string]any)
			af = maps.Clone(old)
			if af == nil {
				af = map[string]any{}
			}
		}
		af[name] = v
	}
	if af != nil {
		h.facts["ansible_facts"] = af
	}
	h.dirty, h.outside = true, nil
}

// connect opens the host's connection once; a failure is remembered.
func (r *runner) connect(ctx context.Context, h *hostState) (Conn, error) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.conn != nil || h.connErr != nil {
		return h.conn, h.connErr
	}
	if r.opts.Connector == nil {
		h.connErr = fmt.Errorf("%s: %w: no connector configured", h.host.Name, ErrUnreachable)
		return nil, h.connErr
	}
	conn, err := r.opts.Connector.Connect(ctx, h.host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", h.host.Name, ctx.Err())
		}
		if !errors.Is(err, ErrUnreachable) {
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		h.connErr = fmt.Errorf("%s: %w", h.host.Name, err)
		return nil, h.connErr
	}
	h.conn = conn
	return conn, nil
}

// hostByName returns the state of a host, adding one without variables for
// a delegate that is not in the inventory.
func (r *runner) hostByName(name string) *hostState {
	r.hostsMu.Lock()
	defer r.hostsMu.Unlock()
	if h, ok := r.hosts[name]; ok {
		return h
	}
	h := newHostState(Host{Name: name})
	r.hosts[name] = h
	return h
}

// closeConns closes connections that implement io.Closer.
func (r *runner) closeConns() {
	for _, h := range r.hosts {
		if c, ok := h.conn.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
}
