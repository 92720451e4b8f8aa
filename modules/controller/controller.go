// Package controller holds orch's controller-side playbook modules: they run in orch and
// act on a host through its SSH connection (agent push, start, facts) or on the cluster
// through its API (tokens, members). `orch up` and the other built-in playbooks are made of
// them, and users' playbooks can call them too.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"orch/nodeagent/api"
	"orch/orchestrator/clientstore"
	"orch/orchestrator/transport"
	"orch/playbooks"
)

// Sentinel errors.
var (
	ErrNoTransport = errors.New("this module needs an SSH connection")
	ErrSplitBrain  = errors.New("hosts belong to different clusters")
)

// Deps are what the modules need from orch.
type Deps struct {
	// AgentBinary is the local nodeagent binary to push.
	AgentBinary string
	// Store holds orch's client certificate and the pinned cluster certificates.
	Store *clientstore.Store
	// Preseed, when set (`orch up --preseed FILE`), supplies the cluster-wide settings
	// instead of the inventory's config/storage_pools/networks/profiles vars.
	Preseed *api.Preseed
	// Logger receives debug logs.
	Logger *slog.Logger
	// Findings, when set, collect what the run's summary reports (refused downgrades,
	// the upgrade plan).
	Findings *Findings
}

// Registry returns the controller modules bound to deps, with the cluster entity modules
// (storage_pool, storage_volume, network, profile, image; see entities.go).
func Registry(deps Deps) playbooks.Registry {
	return deps.withEntities(playbooks.Registry{
		"agent_install":       moduleFunc(deps.agentInstall),
		"agent_start":         moduleFunc(deps.agentStart),
		"agent_stop":          moduleFunc(deps.agentStop),
		"agent_facts":         moduleFunc(deps.agentFacts),
		"agent_command":       moduleFunc(deps.agentCommand),
		"cluster_plan":        moduleFunc(deps.clusterPlan),
		"cluster_bootstrap":   moduleFunc(deps.clusterBootstrap),
		"cluster_trust":       moduleFunc(deps.clusterTrust),
		"cluster_join":        moduleFunc(deps.clusterJoin),
		"cluster_members":     moduleFunc(deps.clusterMembers),
		"cluster_wait":        moduleFunc(deps.clusterWait),
		"cluster_remove_lost": moduleFunc(deps.clusterRemoveLost),
		"upgrade_preflight":   moduleFunc(deps.upgradePreflight),
		"recover_plan":        moduleFunc(deps.recoverPlan),
		"recover_report":      moduleFunc(deps.recoverReport),
		"cluster_stale":       moduleFunc(deps.clusterStale),
		"instance":            moduleFunc(deps.instance),
		"setup":               moduleFunc(deps.setup),
		"host_prereqs":        moduleFunc(deps.hostPrereqs),
		"reset_plan":          moduleFunc(deps.resetPlan),
		"cluster_leave":       moduleFunc(deps.clusterLeave),
		"agent_remove":        moduleFunc(deps.agentRemove),
	})
}

// moduleFunc adapts a function to playbooks.Module.
type moduleFunc func(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error)

func (f moduleFunc) Run(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	return f(ctx, t)
}

// Transporter is the optional ability of a playbooks.Conn to hand out its SSH connection.
type Transporter interface {
	Transport() *transport.Conn
}

func sshConn(t *playbooks.TaskContext) (*transport.Conn, error) {
	c, err := t.Conn()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(Transporter)
	if !ok {
		return nil, ErrNoTransport
	}
	return tc.Transport(), nil
}

// hostAgent returns the SSH connection of the task's host (or delegate) and the agent
// directory there: what every module acting on the agent starts with.
func hostAgent(t *playbooks.TaskContext) (*transport.Conn, string, error) {
	conn, err := sshConn(t)
	if err != nil {
		return nil, "", err
	}
	dir, err := agentDirOf(t)
	if err != nil {
		return nil, "", err
	}
	return conn, dir, nil
}

// hostVars returns the variables of another host (hostvars[name]), or the task host's.
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

func strVar(vars map[string]any, name, def string) string {
	if s, ok := vars[name].(string); ok && s != "" {
		return s
	}
	return def
}

// agentDirOf is the agent directory of the host whose connection the task uses.
func agentDirOf(t *playbooks.TaskContext) (string, error) {
	vars, err := hostVars(t, t.Delegate)
	if err != nil {
		return "", err
	}
	return strVar(vars, "agent_dir", "/var/lib/nodeagent"), nil
}
