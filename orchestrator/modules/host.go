package modules

import (
	"context"
	"errors"
	"fmt"

	"orch/inventory"
	"orch/orchestrator/transport"
	"orch/playbooks"
)

// ErrNoSSH means the modules were given no SSH connections (Deps.SSH).
var ErrNoSSH = errors.New("this module needs an SSH connection")

// connHost is the host whose connection a task uses: its delegate, or its own host.
func connHost(t *playbooks.TaskContext) string {
	if t.Delegate != "" {
		return t.Delegate
	}
	return t.Host
}

// ssh returns the SSH connection to host. As for the engine's own connections, a failure
// to connect marks the host UNREACHABLE (it wraps playbooks.ErrUnreachable).
func (d Deps) ssh(ctx context.Context, host string) (*transport.Conn, error) {
	if d.SSH == nil {
		return nil, ErrNoSSH
	}
	conn, err := d.SSH.SSH(ctx, host)
	switch {
	case err == nil:
		return conn, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", host, ctx.Err())
	case !errors.Is(err, playbooks.ErrUnreachable):
		err = fmt.Errorf("%w: %w", playbooks.ErrUnreachable, err)
	}
	return nil, fmt.Errorf("%s: %w", host, err)
}

// agent returns the agent settings of an inventory host.
func (d Deps) agent(host string) (inventory.AgentSettings, error) {
	a, ok := d.Agents[host]
	if !ok {
		return a, fmt.Errorf("no host %q in the inventory", host)
	}
	return a, nil
}

// memberName is the member name (node_name) of an inventory host; the host's name when
// the inventory has no such host.
func (d Deps) memberName(host string) string {
	if a, ok := d.Agents[host]; ok {
		return a.NodeName
	}
	return host
}

// hostAgent returns the SSH connection of the task's host (or delegate) and that host's
// agent settings: what every module acting on the agent starts with.
func (d Deps) hostAgent(ctx context.Context, t *playbooks.TaskContext) (*transport.Conn, inventory.AgentSettings, error) {
	host := connHost(t)
	conn, err := d.ssh(ctx, host)
	if err != nil {
		return nil, inventory.AgentSettings{}, err
	}
	a, err := d.agent(host)
	return conn, a, err
}

// hostVars returns the variables of another host (hostvars[name]), or the task host's:
// what earlier tasks registered there, and the cluster-wide group variables.
func hostVars(t *playbooks.TaskContext, name string) (map[string]any, error) {
	if name == "" || name == t.Host {
		out := map[string]any{}
		for _, n := range t.Vars().Names() {
			out[n], _ = t.Vars().Get(n)
		}
		return out, nil
	}
	hv, _ := t.Vars().Get("hostvars")
	all, ok := hv.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("hostvars unavailable")
	}
	v, ok := all[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no host %q in the inventory", name)
	}
	return v, nil
}
