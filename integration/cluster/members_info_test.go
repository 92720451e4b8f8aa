package cluster

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
)

// TestMemberColumns: `cluster list` has LXD's ARCHITECTURE, FAILURE DOMAIN and DESCRIPTION
// columns; every member, joined ones included, records its own architecture; `cluster
// edit` through a follower sets a member's failure domain and description, seen from every
// member.
func TestMemberColumns(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	arch, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(arch))
	wait.For(t, 20*time.Second, "every member's architecture", func() error {
		members, err := agenttest.ListMembers(ms[2])
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.Architecture != want || m.FailureDomain != "default" {
				return fmt.Errorf("%s: architecture %q, failure domain %q", m.ServerName, m.Architecture, m.FailureDomain)
			}
		}
		return nil
	})
	follower := ms[0]
	if follower == agenttest.LeaderOf(t, ms) {
		follower = ms[1]
	}
	shown := follower.MustRun("cluster", "show", ms[1].Name)
	edited := strings.NewReplacer("failure_domain: default", "failure_domain: rack2", `description: ""`, "description: second").Replace(shown)
	follower.MustRunInput(edited, "cluster", "edit", ms[1].Name)
	for _, a := range ms {
		out := a.MustRun("cluster", "list")
		header, row := "", ""
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "NAME") {
				header = line
			}
			if strings.Contains(line, "| "+ms[1].Name+" ") {
				row = line
			}
		}
		for _, w := range []string{"ARCHITECTURE", "FAILURE DOMAIN", "DESCRIPTION"} {
			if !strings.Contains(header, w) {
				t.Errorf("%s: cluster list has no %s column:\n%s", a.Name, w, out)
			}
		}
		for _, w := range []string{want, "rack2", "second"} {
			if !strings.Contains(row, w) {
				t.Errorf("%s: %s's row has no %q:\n%s", a.Name, ms[1].Name, w, out)
			}
		}
	}
}
