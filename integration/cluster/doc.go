// Package cluster holds process-level tests of the nodeagent binary: real daemons, each with
// its own agent directory and its own loopback address (127.0.0.N), formed into clusters with
// the agent's own CLI and API client, killed with SIGKILL, stopped with SIGTERM and restarted.
//
// The tests build the binary once (or use $NODEAGENT_BIN), need no root and send traffic to
// 127.0.0.0/8 only. The harness is integration/agenttest (agenttest.Start, FormCluster,
// LeaderOf) and the waits are internal/wait's.
package cluster
