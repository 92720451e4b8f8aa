// Package modules is orch's control plane as playbook modules: everything `orch play`,
// `orch up`, `orch upgrade`, `orch recover` and `orch reset` can run, composed by one
// function, Registry. It owns:
//
//   - the agent on a host, over SSH (agent_install, agent_start, agent_stop, agent_facts,
//     agent_command, agent_remove), through orchestrator/agentctl, which alone knows the
//     agent directory's layout and command line;
//   - cluster membership (cluster_plan, cluster_bootstrap, cluster_trust, cluster_join,
//     cluster_members, cluster_wait, cluster_stale, cluster_leave, cluster_remove_lost), the
//     rolling upgrade (upgrade_preflight), recovery (recover_plan, recover_report) and reset
//     (reset_plan);
//   - the cluster's objects through its API (instance, storage_pool, storage_volume,
//     network, profile, image);
//   - the host itself (setup, host_prereqs), through orchestrator/hostprep.
//
// Registry adds them over the engine's generic modules (playbooks.Builtins). Per-host agent
// settings (node_name, agent_dir, cluster_address, client_address, member_config) come
// typed in Deps.Agents, read once from the inventory; SSH connections come through
// Deps.SSH. Every change goes through playbooks.TaskContext.Change, so --check is honest.
//
// It must not import the agent's internals (only nodeagent/api and its sub-packages), the
// node drivers (modules/...) or orch's CLI (orchestrator/cli); the engine (playbooks) and
// the inventory never import it.
package modules
