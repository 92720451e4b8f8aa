package lxdclient

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestClusterTokens drives join tokens with the real client: `lxc cluster add` prints a
// token (a token operation), `list-tokens` lists it through another member, `revoke-token`
// cancels it, a second token printed by the client joins a 4th member (whose events reach
// an `lxc monitor` connected before it joined), and `lxc cluster remove` removes it.
func TestClusterTokens(t *testing.T) {
	NeedLXC(t)
	ms := StartCluster(t, 3)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[1])

	out := c.MustRun("cluster", "add", "gone")
	tok := printedToken(t, out, "gone")
	if jt, err := api.DecodeJoinToken(tok); err != nil || jt.ServerName != "gone" || len(jt.Addresses) != 3 {
		t.Fatalf("lxc cluster add printed %q: %+v %v", tok, jt, err)
	}
	list := c.MustRun("cluster", "list-tokens")
	if !strings.Contains(list, "gone") || !strings.Contains(list, tok) {
		t.Fatalf("list-tokens has no token for gone:\n%s", list)
	}
	c.MustRun("cluster", "revoke-token", "gone")
	if list := c.MustRun("cluster", "list-tokens"); strings.Contains(list, "gone") {
		t.Fatalf("list-tokens after revoke-token still has gone:\n%s", list)
	}
	if ts, err := ms[0].Client().Tokens(t.Context()); err != nil || len(ts) != 0 {
		t.Fatalf("after revoke-token the cluster still holds tokens %v (%v)", ts, err)
	}

	watch := monitor(t, c, "--type=lifecycle") // connected before node4 exists
	tok = printedToken(t, c.MustRun("cluster", "add", "node4"), "node4")
	n4 := agenttest.Start(t, "node4", agenttest.NewAddr(t))
	n4.MustRunInput(agenttest.PreseedYAML(t, agenttest.TokenPreseed(n4, tok)), "init", "--preseed")
	wait.For(t, 30*time.Second, "node4 listed ONLINE by lxc", func() error {
		out := c.MustRun("cluster", "list")
		if !strings.Contains(out, "node4") || strings.Count(out, "ONLINE") != 4 {
			return fmt.Errorf("lxc cluster list:\n%s", out)
		}
		return nil
	})
	// A profile is created, and its event sent, by the member handling the request: node4's
	// events reach node2's client once node2 follows the member its replica just learnt of.
	n := 0
	waitFor(t, watch, "location: node4", func() { n++; n4.MustRun("profile", "create", fmt.Sprintf("from4-%d", n)) })
	if list := c.MustRun("cluster", "list-tokens"); strings.Contains(list, "node4") {
		t.Fatalf("list-tokens still has the used token of node4:\n%s", list)
	}
	c.MustRun("cluster", "remove", "node4")
	if out := c.MustRun("cluster", "list"); strings.Contains(out, "node4") {
		t.Fatalf("lxc cluster list after remove:\n%s", out)
	}
}

// printedToken is the token `lxc cluster add name` printed after its header line.
func printedToken(t *testing.T, out, name string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != "Member "+name+" join token:" {
		t.Fatalf("lxc cluster add %s printed:\n%s", name, out)
	}
	return strings.TrimSpace(lines[1])
}
