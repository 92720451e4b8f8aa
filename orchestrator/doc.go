// Package orchestrator is orch's side of the system: it turns an inventory into playbook
// runs over SSH (`orch up`, `orch play`, `orch upgrade`, `orch recover`, `orch reset`,
// `orch node`) and talks to clusters through their API with a pinned certificate.
//
// It owns, with its sub-packages:
//
//   - this package: a run's session (inventory, connections, orch's state, the modules'
//     dependencies) and the summaries of the built-in playbooks;
//   - modules: orch's control plane as playbook modules, composed by one Registry;
//   - agentctl: the agent's lifecycle on a host, its directory layout and command line;
//   - transport: SSH and SFTP; clientstore: orch's client certificate and pinned clusters;
//   - hostprep: a host's facts and the packages a member needs;
//   - cli and cmd/orch: the command line, which only fills Options and calls in here.
//
// Per-host agent settings are read from the inventory once (inventory.Host.Agent, in
// openSession) and handed typed to the modules and to `orch node`.
//
// It must not import the agent's internals: of nodeagent/ only nodeagent/api and its
// sub-packages (types, client, certificates, the shared cluster verbs); nor the node
// drivers (modules/). The agent, the node drivers, the playbook engine and the inventory
// never import it. imports_test.go at the module root checks these rules.
package orchestrator
