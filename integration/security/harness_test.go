// Package security tests what the cluster refuses: untrusted clients on the cluster and
// client APIs, fabricated joins, other local users on the unix socket, SQL in API inputs,
// and that the trust password never appears in logs, API output or files. Real nodeagent
// processes on loopback addresses (integration/agenttest); more join refusals live in
// integration/cluster (TestJoinRefusals), SSH host-key refusal in integration/orchup
// (TestHostKeyMismatch).
package security

import (
	"context"
	"os"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
)

// trustPassword is the trust password of every test cluster; the tests grep for it.
const trustPassword = "Zq8-security-trust-password-Zq8"

func TestMain(m *testing.M) { os.Exit(agenttest.Main(m)) }

// startAgent starts a daemon for member name on a fresh directory and loopback address.
func startAgent(t *testing.T, name string) *agenttest.Agent {
	t.Helper()
	return agenttest.Start(t, name, agenttest.NewAddr(t))
}

// bootstrap makes a a one-member cluster with the trust password, through the API.
func bootstrap(t *testing.T, a *agenttest.Agent) {
	t.Helper()
	err := a.Client().Init(ctxT(t, time.Minute), api.InitPost{Preseed: api.Preseed{
		Config:  map[string]string{"core.https_address": a.Addr, "core.trust_password": trustPassword},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: a.Name},
	}})
	if err != nil {
		t.Fatalf("%s: bootstrap: %v", a.Name, err)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
