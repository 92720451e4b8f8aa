package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// labMember is a nodeagent daemon running inside a lab host (its network and mount
// namespaces): the pools it mounts, the bridges and dnsmasq it makes and the containers it
// starts stay inside that host, and die with it when the lab closes.
type labMember struct {
	*agenttest.HostAgent
	t *testing.T
}

// startLabMember starts a daemon in host h (agent directory /var/lib/nodeagent there) and
// waits until its socket answers.
func startLabMember(t *testing.T, h *lab.Host, name string) *labMember {
	t.Helper()
	return &labMember{HostAgent: agenttest.StartInHost(t, h, name), t: t}
}

// exec runs a command inside the member's host and returns its combined output.
func (m *labMember) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := m.Host.Exec(ctx, args...)
	return string(out), err
}

// list is `list --format json` on the member.
func (m *labMember) list() []api.Instance {
	m.t.Helper()
	var out []api.Instance
	must(m.t, json.Unmarshal([]byte(m.MustRun("", "list", "--format", "json")), &out))
	return out
}

// poolCreatedEverywhere waits until pool's part is Created on every member.
func poolCreatedEverywhere(t *testing.T, via *labMember, pool string, ms []*labMember) {
	t.Helper()
	wait.For(t, 60*time.Second, "pool "+pool+" created on every member", func() error {
		for _, m := range ms {
			var p api.StoragePoolInfo
			r := via.Run("", "storage", "show", pool, "--target", m.Name, "--format", "json")
			if r.Code != 0 {
				return fmt.Errorf("storage show %s --target %s: %s", pool, m.Name, r.Stderr)
			}
			if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
				return err
			}
			if p.Status != api.StatusCreated {
				return fmt.Errorf("%s on %s: %s %s", pool, m.Name, p.Status, p.Message)
			}
		}
		return nil
	})
}

// wantFailure fails the test unless r failed with every substring in its stderr.
func wantFailure(t *testing.T, r agenttest.Result, substrings ...string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("command succeeded, want an error containing %q:\n%s", substrings, r.Stdout)
	}
	for _, s := range substrings {
		if !strings.Contains(r.Stderr, s) {
			t.Fatalf("error %q does not contain %q", strings.TrimSpace(r.Stderr), s)
		}
	}
}
