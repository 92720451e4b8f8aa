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
	// lazy names the facts include_vars set: their templates are rendered
	// when used (other facts are values, never templated again).
	lazy map[string]bool
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

	connMu sync.Mutex
	conns  map[string]*hostConn
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

// setFactsFrom sets an outcome's facts, as host facts or as variables.
func (h *hostState) setFactsFrom(o outcome) {
	for k := range o.facts {
		if o.lazyFacts {
			if h.lazy == nil {
				h.lazy = map[string]bool{}
			}
			h.lazy[k] = true
		} else {
			delete(h.lazy, k)
		}
	}
	if o.hostFacts {
		h.setModuleFacts(o.facts)
	} else {
		h.setFacts(o.facts)
	}
}

// setModuleFacts is setFacts for the facts a module gathered (service_facts' services,
// getent's getent_passwd...): as in Ansible, every one is also ansible_facts.<name>, not
// only the ansible_X ones.
func (h *hostState) setModuleFacts(facts map[string]any) {
	h.setFacts(facts)
	var af map[string]any
	for k, v := range facts {
		if strings.HasPrefix(k, "ansible_") {
			continue
		}
		if af == nil {
			old, _ := h.facts["ansible_facts"].(map[string]any)
			if af = maps.Clone(old); af == nil {
				af = map[string]any{}
			}
		}
		af[k] = v
	}
	if af != nil {
		h.facts["ansible_facts"] = af
	}
}

// connect opens the host's connection once per login user and connection
// type; a failure is remembered. A host whose ansible_connection (or the
// task's connection keyword) is local runs commands on this machine;
// remote_user is the login user unless the host sets ansible_user.
func (r *runner) connect(ctx context.Context, h *hostState, kw ConnKeywords) (Conn, error) {
	hv := h.host.Vars
	local := kw.Connection == "local"
	if c, ok := hv["ansible_connection"].(string); ok && c != "" {
		local = c == "local" // the variable beats the keyword, as in Ansible
	}
	user := ""
	if _, set := hv["ansible_user"]; !set && kw.RemoteUser != "" {
		if _, set := hv["ansible_ssh_user"]; !set {
			user = kw.RemoteUser
		}
	}
	key := user
	if local {
		key = "\x00local"
	}
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.conns == nil {
		h.conns = map[string]*hostConn{}
	}
	hc := h.conns[key]
	if hc == nil {
		hc = &hostConn{}
		h.conns[key] = hc
	}
	if hc.conn != nil || hc.err != nil {
		return hc.conn, hc.err
	}
	if local {
		hc.conn = &LocalConn{}
		return hc.conn, nil
	}
	switch kw.Connection {
	case "", "ssh", "smart", "paramiko", "paramiko_ssh":
	default:
		hc.err = fmt.Errorf("%s: %w: connection %q is not supported (ssh, local)", h.host.Name, ErrUnreachable, kw.Connection)
		return nil, hc.err
	}
	if r.opts.Connector == nil {
		hc.err = fmt.Errorf("%s: %w: no connector configured", h.host.Name, ErrUnreachable)
		return nil, hc.err
	}
	host := h.host
	if user != "" {
		host.Vars = maps.Clone(hv)
		host.Vars["ansible_user"] = user
	}
	conn, err := r.opts.Connector.Connect(ctx, host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", h.host.Name, ctx.Err())
		}
		if !errors.Is(err, ErrUnreachable) {
			err = fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		hc.err = fmt.Errorf("%s: %w", h.host.Name, err)
		return nil, hc.err
	}
	hc.conn = conn
	return conn, nil
}

// resetConn closes and forgets a host's connections (meta: reset_connection).
func (r *runner) resetConn(h *hostState) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	for _, hc := range h.conns {
		if c, ok := hc.conn.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	h.conns = nil
}

// hostConn is one connection of a host (per login user / connection type).
type hostConn struct {
	conn Conn
	err  error
}

// hostByName returns the state of a host, adding one without variables for
// a delegate that is not in the inventory; localhost (and 127.0.0.1) not in
// the inventory is Ansible's implicit localhost, with a local connection.
func (r *runner) hostByName(name string) *hostState {
	r.hostsMu.Lock()
	defer r.hostsMu.Unlock()
	if h, ok := r.hosts[name]; ok {
		return h
	}
	host := Host{Name: name}
	if isLocalhost(name) {
		host.Vars = map[string]any{"ansible_connection": "local"}
	}
	h := newHostState(host)
	r.hosts[name] = h
	return h
}

// closeConns closes connections that implement io.Closer.
func (r *runner) closeConns() {
	for _, h := range r.hosts {
		r.resetConn(h)
	}
}

func isLocalhost(name string) bool {
	return name == "localhost" || name == "127.0.0.1" || name == "::1"
}
