package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

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
	ms := formCluster(t, 4)
	waitRoles(t, ms[0], 10*time.Second, "3 voters + 1 stand-by", wantRoleCounts(3, 1, 0))
	roles := roleMap(mustMembers(t, ms[0]))
	var leader, voter, standby *agent
	for _, m := range ms {
		switch r := roles[m.name]; {
		case strings.HasPrefix(r, api.RoleDatabaseLeader):
			leader = m
		case isVoter(r):
			voter = m
		case r == api.RoleDatabaseStandby:
			standby = m
		}
	}
	victim := voter
	if stopLeader {
		victim = leader
	}
	var rest []*agent
	for _, m := range ms {
		if m != victim {
			rest = append(rest, m)
		}
	}
	if code := victim.Stop(); code != 0 {
		t.Errorf("%s exited %d after SIGTERM; want 0", victim.name, code)
	}
	// The hand-over happens before the process exits: the stand-by is a voter at once.
	after := roleMap(mustMembers(t, rest[0]))
	if !isVoter(after[standby.name]) {
		t.Errorf("right after %s stopped, the stand-by %s has roles %q; want a voter (roles %v)", victim.name, standby.name, after[standby.name], after)
	}
	waitRoles(t, rest[0], 10*time.Second, "the three running members as voters", func(roles map[string]string) error {
		for _, m := range rest {
			if !isVoter(roles[m.name]) {
				return fmt.Errorf("%s has roles %q (%v)", m.name, roles[m.name], roles)
			}
		}
		if isVoter(roles[victim.name]) {
			return fmt.Errorf("the stopped %s still votes (%v)", victim.name, roles)
		}
		return nil
	})
	for i, w := range rest {
		key := fmt.Sprintf("user.after-stop-%d", i)
		w.MustRun("config", "set", key, w.name)
		for _, r := range rest {
			if got := strings.TrimSpace(r.MustRun("config", "get", key)); got != w.name {
				t.Errorf("%s: %s = %q after %s set it; want %q", r.name, key, got, w.name, w.name)
			}
		}
	}
}
