package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
)

// TestGracefulStopHandover stops a voter with SIGTERM in a cluster of three voters and one
// stand-by: the stand-by takes the vote before the voter goes, and the cluster stays
// writable. Done once for a follower voter and once for the leader.
func TestGracefulStopHandover(t *testing.T) {
	for _, target := range []string{"follower", "leader"} {
		t.Run(target, func(t *testing.T) { stopVoter(t, target == "leader") })
	}
}

func stopVoter(t *testing.T, stopLeader bool) {
	ms := agenttest.FormCluster(t, 4)
	agenttest.WaitRoles(t, ms[0], 10*time.Second, "3 voters + 1 stand-by", agenttest.WantRoleCounts(3, 1, 0))
	roles := agenttest.RoleMap(mustMembers(t, ms[0]))
	var leader, voter, standby *agenttest.Agent
	for _, m := range ms {
		switch r := roles[m.Name]; {
		case strings.HasPrefix(r, api.RoleDatabaseLeader):
			leader = m
		case agenttest.IsVoter(r):
			voter = m
		case r == api.RoleDatabaseStandby:
			standby = m
		}
	}
	victim := voter
	if stopLeader {
		victim = leader
	}
	var rest []*agenttest.Agent
	for _, m := range ms {
		if m != victim {
			rest = append(rest, m)
		}
	}
	if code := victim.Stop(); code != 0 {
		t.Errorf("%s exited %d after SIGTERM; want 0", victim.Name, code)
	}
	// The hand-over happens before the process exits: the stand-by is a voter at once.
	after := agenttest.RoleMap(mustMembers(t, rest[0]))
	if !agenttest.IsVoter(after[standby.Name]) {
		t.Errorf("right after %s stopped, the stand-by %s has roles %q; want a voter (roles %v)", victim.Name, standby.Name, after[standby.Name], after)
	}
	agenttest.WaitRoles(t, rest[0], 10*time.Second, "the three running members as voters", func(roles map[string]string) error {
		for _, m := range rest {
			if !agenttest.IsVoter(roles[m.Name]) {
				return fmt.Errorf("%s has roles %q (%v)", m.Name, roles[m.Name], roles)
			}
		}
		if agenttest.IsVoter(roles[victim.Name]) {
			return fmt.Errorf("the stopped %s still votes (%v)", victim.Name, roles)
		}
		return nil
	})
	for i, w := range rest {
		key := fmt.Sprintf("user.after-stop-%d", i)
		w.MustRun("config", "set", key, w.Name)
		for _, r := range rest {
			if got := strings.TrimSpace(r.MustRun("config", "get", key)); got != w.Name {
				t.Errorf("%s: %s = %q after %s set it; want %q", r.Name, key, got, w.Name, w.Name)
			}
		}
	}
}
