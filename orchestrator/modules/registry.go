package modules

import (
	"context"
	"errors"
	"log/slog"
	"maps"

	"orch/inventory"
	"orch/nodeagent/api"
	"orch/orchestrator/clientstore"
	"orch/orchestrator/transport"
	"orch/playbooks"
	"orch/playbooks/hostmods"
)

// ErrSplitBrain means the hosts belong to different clusters.
var ErrSplitBrain = errors.New("hosts belong to different clusters")

// Deps are what the modules need from orch, given once per run.
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
	// Agents are the agent settings of every inventory host (node_name, agent_dir,
	// cluster_address, client_address, member_config), by inventory hostname: read and
	// validated once from the inventory (inventory.Host.Agent).
	Agents map[string]inventory.AgentSettings
	// SSH gives the modules that drive the agent the SSH connection to a host.
	SSH SSHDialer
}

// SSHDialer hands out the run's SSH connection to an inventory host, dialing it on first
// use; orch's connector implements it.
type SSHDialer interface {
	SSH(ctx context.Context, host string) (*transport.Conn, error)
}

// Registry returns every module `orch play` and `orch up` can run, bound to deps: the
// engine's generic modules (playbooks.Builtins), then the host modules, then orch's own
// (Deps.own). A later set replaces a module of the same name in an earlier one.
func Registry(deps Deps) playbooks.Registry {
	r := playbooks.Builtins()
	maps.Copy(r, hostmods.Registry()) // Ansible's host modules: apt, service, user, lineinfile, …
	maps.Copy(r, deps.own())
	return r
}

// own are orch's own modules (one map literal, so a name cannot be given twice).
func (d Deps) own() playbooks.Registry {
	return playbooks.Registry{
		// The agent on one host, over SSH, and the host's facts and packages.
		"agent_install": playbooks.ModuleFunc(d.agentInstall),
		"agent_start":   playbooks.ModuleFunc(d.agentStart),
		"agent_stop":    playbooks.ModuleFunc(d.agentStop),
		"agent_facts":   playbooks.ModuleFunc(d.agentFacts),
		"agent_command": playbooks.ModuleFunc(d.agentCommand),
		"agent_remove":  playbooks.ModuleFunc(d.agentRemove),
		"setup":         playbooks.ModuleFunc(d.setup),
		"host_prereqs":  playbooks.ModuleFunc(d.hostPrereqs),
		// Cluster membership: bootstrap, join, trust, upgrade, recovery and reset.
		"cluster_plan":        playbooks.ModuleFunc(d.clusterPlan),
		"cluster_bootstrap":   playbooks.ModuleFunc(d.clusterBootstrap),
		"cluster_trust":       playbooks.ModuleFunc(d.clusterTrust),
		"cluster_join":        playbooks.ModuleFunc(d.clusterJoin),
		"cluster_members":     playbooks.ModuleFunc(d.clusterMembers),
		"cluster_wait":        playbooks.ModuleFunc(d.clusterWait),
		"cluster_remove_lost": playbooks.ModuleFunc(d.clusterRemoveLost),
		"cluster_stale":       playbooks.ModuleFunc(d.clusterStale),
		"cluster_leave":       playbooks.ModuleFunc(d.clusterLeave),
		"upgrade_preflight":   playbooks.ModuleFunc(d.upgradePreflight),
		"recover_plan":        playbooks.ModuleFunc(d.recoverPlan),
		"recover_report":      playbooks.ModuleFunc(d.recoverReport),
		"reset_plan":          playbooks.ModuleFunc(d.resetPlan),
		// The cluster's objects through its API (entity.go).
		"instance":       playbooks.ModuleFunc(d.instance),
		"storage_pool":   playbooks.ModuleFunc(d.storagePool),
		"storage_volume": playbooks.ModuleFunc(d.storageVolume),
		"network":        playbooks.ModuleFunc(d.network),
		"profile":        playbooks.ModuleFunc(d.profile),
		"image":          playbooks.ModuleFunc(d.image),
	}
}
