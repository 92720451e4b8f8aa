package cluster

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestRoles grows a cluster to six members and checks the database roles after each join,
// from `cluster list --format json` as an operator sees them: one member holds the database
// alone until the third joins; then three voters, two stand-bys, and spares beyond.
func TestRoles(t *testing.T) {
	ms := agenttest.StartN(t, 6)
	agenttest.Bootstrap(t, ms[0], api.Preseed{})
	want := []struct{ voters, standby, spare int }{
		{1, 0, 0}, // node1 alone: database-leader
		{1, 0, 1}, // node2 joins without a replica
		{3, 0, 0}, // node3: three voters
		{3, 1, 0}, // node4: stand-by
		{3, 2, 0}, // node5: stand-by
		{3, 2, 1}, // node6: spare
	}
	for i, w := range want {
		if i > 0 {
			agenttest.JoinWithToken(t, ms[0], ms[i])
		}
		roles := cliRoles(t, ms[i])
		if len(roles) != i+1 {
			t.Fatalf("after %s joined, cluster list shows %d members: %v", ms[i].Name, len(roles), roles)
		}
		if err := agenttest.WantRoleCounts(w.voters, w.standby, w.spare)(roles); err != nil {
			t.Fatalf("after %s joined: %v", ms[i].Name, err)
		}
		t.Logf("after %s: %v", ms[i].Name, roles)
		if i == 1 {
			if st, err := readReplica(ms[1]); err == nil {
				t.Errorf("node2 holds a replica while spare: config_version %d, %d user keys", st.version, len(st.user))
			}
		}
	}
	if st, err := readReplica(ms[1]); err != nil || st.version == 0 {
		t.Errorf("node2, a voter since node3 joined, has no replica: %v", err)
	}
	roles := cliRoles(t, ms[5])
	if roles["node1"] != api.RoleDatabaseLeader+","+api.RoleDatabase {
		t.Errorf("node1 (bootstrap) roles %q, want database-leader,database", roles["node1"])
	}
	for _, n := range []string{"node2", "node3"} {
		if !agenttest.IsVoter(roles[n]) {
			t.Errorf("%s roles %q, want a voter (promoted when node3 joined)", n, roles[n])
		}
	}
	for _, n := range []string{"node4", "node5"} {
		if roles[n] != api.RoleDatabaseStandby {
			t.Errorf("%s roles %q, want database-standby", n, roles[n])
		}
	}
	if roles["node6"] != "" {
		t.Errorf("node6 roles %q, want none (spare)", roles["node6"])
	}
	checkDatabaseMembers(t, ms[0], 5)
}

// cliRoles runs `cluster list --format json` on a and maps member names to their roles,
// waiting until every member is ONLINE.
func cliRoles(t *testing.T, a *agenttest.Agent) map[string]string {
	t.Helper()
	var roles map[string]string
	wait.For(t, 10*time.Second, "every member ONLINE in cluster list", func() error {
		r := a.Run("cluster", "list", "--format", "json")
		if r.Code != 0 {
			return fmt.Errorf("cluster list: exit %d: %s", r.Code, r.Stderr)
		}
		var list []api.ClusterMember
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
			return fmt.Errorf("cluster list --format json: %v: %.200s", err, r.Stdout)
		}
		for _, m := range list {
			if m.Status != api.StatusOnline {
				return fmt.Errorf("%s is %s (%s)", m.ServerName, m.Status, m.Message)
			}
		}
		roles = agenttest.RoleMap(list)
		return nil
	})
	return roles
}

// checkDatabaseMembers checks `cluster list-database` on a lists n raft members.
func checkDatabaseMembers(t *testing.T, a *agenttest.Agent, n int) {
	t.Helper()
	// A member learns a configuration change when the leader replicates it: wait for it.
	wait.For(t, 10*time.Second, fmt.Sprintf("list-database on %s to show %d raft members", a.Name, n), func() error {
		var info api.DatabaseInfo
		if err := json.Unmarshal([]byte(a.MustRun("cluster", "list-database", "--format", "json")), &info); err != nil {
			return err
		}
		if len(info.Members) != n {
			return fmt.Errorf("%d raft members %v", len(info.Members), info.Members)
		}
		return nil
	})
}
