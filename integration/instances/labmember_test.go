package instances

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// listInstances is `list --format json` on member m.
func listInstances(t *testing.T, m *agenttest.HostAgent) []api.Instance {
	t.Helper()
	var out []api.Instance
	must(t, json.Unmarshal([]byte(m.MustRun("", "list", "--format", "json")), &out))
	return out
}

// poolCreatedEverywhere waits until pool's part is Created on every member.
func poolCreatedEverywhere(t *testing.T, via *agenttest.HostAgent, pool string, ms []*agenttest.HostAgent) {
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
