package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestRemove removes a live voter cleanly (it leaves the list, resets itself and can join
// again), then force-removes a member killed with SIGKILL; the database keeps three voters.
func TestRemove(t *testing.T) {
	ms := agenttest.FormCluster(t, 4)
	node1, node2, node3, node4 := ms[0], ms[1], ms[2], ms[3]
	agenttest.WaitRoles(t, node1, 10*time.Second, "3 voters + 1 stand-by", agenttest.WantRoleCounts(3, 1, 0))

	t.Run("clean", func(t *testing.T) {
		out := node3.MustRun("cluster", "remove", node2.Name)
		if !strings.Contains(out, "Member node2 removed") {
			t.Errorf("cluster remove printed %q", out)
		}
		agenttest.WaitRoles(t, node1, 10*time.Second, "node2 gone, 3 voters", func(roles map[string]string) error {
			if _, ok := roles[node2.Name]; ok {
				return fmt.Errorf("node2 still listed: %v", roles)
			}
			return agenttest.WantRoleCounts(3, 0, 0)(roles)
		})
		wait.For(t, 10*time.Second, "node2 to reset itself", func() error {
			s, _ := agenttest.Server(t, node2)
			if s.Environment.Initialised || s.Environment.ServerClustered {
				return fmt.Errorf("node2 still initialised: %+v", s.Environment)
			}
			return nil
		})
		if r := node2.Run("cluster", "list"); r.Code == 0 {
			t.Errorf("cluster list on the removed node2 succeeded: %s", r.Stdout)
		}
		agenttest.JoinWithToken(t, node4, node2)
		waitMember(t, node1, node2.Name)
		agenttest.WaitRoles(t, node2, 10*time.Second, "node2 back, 3 voters + 1 stand-by", agenttest.WantRoleCounts(3, 1, 0))
	})
	if t.Failed() {
		return
	}
	t.Run("force", func(t *testing.T) {
		victim := node3
		if strings.HasPrefix(agenttest.RoleMap(mustMembers(t, node1))[victim.Name], api.RoleDatabaseLeader) {
			victim = node4
		}
		victim.Kill()
		r := node1.Run("cluster", "remove", "--force", victim.Name)
		if r.Code == 0 {
			t.Errorf("cluster remove --force without --yes (and no answer) succeeded")
		}
		if got := memberShape(t, node1); !strings.Contains(got, victim.Name+" ") {
			t.Fatalf("an unconfirmed forced removal changed the member list: %s", got)
		}
		node1.MustRun("cluster", "remove", "--force", "--yes", victim.Name)
		agenttest.WaitRoles(t, node1, 15*time.Second, victim.Name+" gone, 3 voters", func(roles map[string]string) error {
			if _, ok := roles[victim.Name]; ok {
				return fmt.Errorf("%s still listed: %v", victim.Name, roles)
			}
			return agenttest.WantRoleCounts(3, 0, 0)(roles)
		})
		node2.MustRun("config", "set", "user.after-force", "yes")
		if got := strings.TrimSpace(node1.MustRun("config", "get", "user.after-force")); got != "yes" {
			t.Errorf("write after the forced removal: node1 reads %q", got)
		}
		checkDatabaseMembers(t, node1, 3)
	})
}

// mustMembers is the member list through a.
func mustMembers(t *testing.T, a *agenttest.Agent) []api.ClusterMember {
	t.Helper()
	var list []api.ClusterMember
	wait.For(t, 10*time.Second, "the member list through "+a.Name, func() error {
		var err error
		list, err = agenttest.ListMembers(a)
		return err
	})
	return list
}
