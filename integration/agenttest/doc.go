// Package agenttest is the one harness of the integration tests for running real nodeagent
// daemons: it builds the nodeagent binary once per test binary (Main), starts agents as
// child processes on loopback addresses of their own (Agent) or detached inside lab hosts
// (HostAgent), waits until they answer and until the cluster's membership says what a test
// needs, gives API clients over the unix socket and over mutual TLS, stops, kills, pauses
// and restarts members by PID, and prints each member's log, line by line prefixed with its
// name, when a test fails. Every integration package starts its agents through it.
//
// It imports the agent's API package and the test lab, and nothing of the agent's
// internals: the daemons under test are the real binary, driven as an operator would.
package agenttest
