// Package verbs is the command line that orch and the agent CLI share: the cluster verbs
// (cluster, config, trust, launch/list/start/stop/restart/delete/exec/file, image, profile,
// remote, storage, network), written once over the API client (nodeagent/api) and mounted
// by both kong trees (Verbs with `embed:""`, ClusterCmd), and how both parse and run a
// command line (Main: --help ends the parse, negative numbers are values, shell completion).
//
// Each binary says only how it reaches a member, with a Reacher: the agent CLI through its
// daemon's unix socket, orch over mutual TLS to a member found in its inventory.
//
// It imports nodeagent/api, output, kong, kongplete and x/term, never the daemon or orch:
// orch may import it (it sits under nodeagent/api).
package verbs
