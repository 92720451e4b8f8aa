package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/nodeagent/api"
)

// testThreshold is the cluster.offline_threshold (seconds) of the resilience tests.
const testThreshold = 2

// TestOfflineAndBack kills a follower with SIGKILL: it is OFFLINE within the threshold, a
// clean removal of it is refused naming it, and it is ONLINE again once restarted. No live
// member is ever OFFLINE meanwhile.
func TestOfflineAndBack(t *testing.T) {
	ms := formCluster(t, 3)
	setThreshold(t, ms[0], testThreshold)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	leader := leaderOf(t, ms)
	victim := otherThan(ms, leader)
	watch := watchOffline(t, otherThanAll(ms, victim))

	watch.Expect(victim.name, false)
	victim.Kill()
	killed := time.Now()
	list := waitStatus(t, leader, victim.name, api.StatusOffline, testThreshold*time.Second+5*time.Second)
	m, _ := memberOf(list, victim.name)
	t.Logf("%s OFFLINE %v after kill -9, %v after its last heartbeat (%s)", victim.name,
		time.Since(killed).Round(time.Millisecond), time.Since(m.LastHeartbeat).Round(time.Millisecond), m.Message)

	r := leader.Run("cluster", "remove", victim.name)
	if r.Code == 0 || !strings.Contains(r.Stderr, "member "+victim.name+" (no heartbeat for") || !strings.Contains(r.Stderr, "--force") {
		t.Errorf("clean remove of the OFFLINE %s: exit %d, stderr %q; want a refusal naming it and suggesting --force", victim.name, r.Code, r.Stderr)
	}

	watch.Expect(victim.name, true)
	victim.Start()
	waitStatus(t, leader, victim.name, api.StatusOnline, 10*time.Second)
	waitStatus(t, victim, victim.name, api.StatusOnline, 10*time.Second)
	watch.Stop()
}

// TestLeaderKilled kills the leader with SIGKILL: the survivors elect a new one, writes
// succeed through either survivor, the new leader neither restarts the dead leader's clock
// nor lets a survivor go OFFLINE, and the dead leader goes OFFLINE, then ONLINE on restart.
func TestLeaderKilled(t *testing.T) {
	ms := formCluster(t, 3)
	setThreshold(t, ms[0], testThreshold)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	old := leaderOf(t, ms)
	survivors := otherThanAll(ms, old)
	watch := watchOffline(t, survivors)

	watch.Expect(old.name, false)
	old.Kill()
	for i, s := range survivors {
		waitWrite(t, s, fmt.Sprintf("user.after-leader-%d", i), s.name, 10*time.Second)
	}
	nl := leaderOf(t, survivors)
	if nl == old {
		t.Fatalf("%s still leads after kill -9", old.name)
	}
	before, _ := memberOf(mustMembers(t, nl), old.name)
	list := waitStatus(t, survivors[0], old.name, api.StatusOffline, testThreshold*time.Second+5*time.Second)
	after, _ := memberOf(list, old.name)
	if !after.LastHeartbeat.Equal(before.LastHeartbeat) {
		t.Errorf("the new leader %s moved the dead %s's last heartbeat from %s to %s", nl.name, old.name,
			before.LastHeartbeat.Format(time.StampMilli), after.LastHeartbeat.Format(time.StampMilli))
	}
	for _, s := range survivors {
		if got := strings.TrimSpace(s.MustRun("config", "get", "user.after-leader-0")); got != survivors[0].name {
			t.Errorf("%s reads user.after-leader-0 = %q, want %q", s.name, got, survivors[0].name)
		}
	}
	watch.Expect(old.name, true)
	old.Start()
	waitStatus(t, nl, old.name, api.StatusOnline, 10*time.Second)
	watch.Stop()
}

// TestTwoVoterLosses kills two voters one after the other in a five-member cluster: after
// the first, a stand-by takes its vote, so the cluster is still writable after the second.
func TestTwoVoterLosses(t *testing.T) {
	if testing.Short() {
		t.Skip("five-member failure test skipped in -short mode")
	}
	ms := formCluster(t, 5)
	setThreshold(t, ms[0], testThreshold)
	waitRoles(t, ms[0], 10*time.Second, "3 voters + 2 stand-bys", wantRoleCounts(3, 2, 0))
	leader := leaderOf(t, ms)
	roles := roleMap(mustMembers(t, leader))
	var first *agent
	for _, m := range ms {
		if m != leader && isVoter(roles[m.name]) {
			first = m
			break
		}
	}
	watch := watchOffline(t, otherThanAll(ms, first))
	watch.Expect(first.name, false)
	first.Kill()
	rest := otherThanAll(ms, first)
	waitRoles(t, leader, 15*time.Second, "a stand-by voting in place of "+first.name, votersAmong(rest, 3, first))
	waitWrite(t, rest[0], "user.after-first-loss", "yes", 10*time.Second)

	// Second loss: the leader itself.
	watch.Expect(leader.name, false)
	leader.Kill()
	rest = otherThanAll(rest, leader)
	for i, s := range rest {
		waitWrite(t, s, fmt.Sprintf("user.after-second-loss-%d", i), s.name, 15*time.Second)
	}
	waitRoles(t, rest[0], 15*time.Second, "the three survivors voting", votersAmong(rest, 3, first, leader))
	for _, s := range rest {
		if got := strings.TrimSpace(s.MustRun("config", "get", "user.after-first-loss")); got != "yes" {
			t.Errorf("%s reads user.after-first-loss = %q after two losses", s.name, got)
		}
	}
	watch.Stop()
}

// votersAmong checks that exactly n members of running vote, none of gone does, and one
// member leads.
func votersAmong(running []*agent, n int, gone ...*agent) func(map[string]string) error {
	return func(roles map[string]string) error {
		v, _, _, l := countRoles(roles)
		for _, g := range gone {
			if isVoter(roles[g.name]) {
				return fmt.Errorf("%s, dead, still votes: %v", g.name, roles)
			}
		}
		live := 0
		for _, m := range running {
			if isVoter(roles[m.name]) {
				live++
			}
		}
		if live != n || v != n || l != 1 {
			return fmt.Errorf("roles %v: %d voters (%d running), %d leaders; want %d running voters and one leader", roles, v, live, l, n)
		}
		return nil
	}
}
