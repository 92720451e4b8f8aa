package lxdclient

import (
	"testing"

	"orch/integration/agenttest"
)

// StartCluster starts n real nodeagent daemons (node1..nodeN) on loopback addresses of their
// own, bootstraps node1 with the trust password agenttest.TrustPassword and joins the others
// with join tokens. Cleanup kills them and prints their logs when the test failed.
func StartCluster(tb testing.TB, n int) []*agenttest.Agent {
	tb.Helper()
	return agenttest.FormCluster(tb, n)
}
