package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// testThreshold is the cluster.offline_threshold (seconds) of the resilience tests.
const testThreshold = 2

// TestOfflineAndBack kills a follower with SIGKILL: it is OFFLINE within the threshold, a
// clean removal of it is refused naming it, and it is ONLINE again once restarted. No live
// member is ever OFFLINE meanwhile.
func TestOfflineAndBack(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	setThreshold(t, ms[0], testThreshold)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	leader := agenttest.LeaderOf(t, ms)
	victim := otherThan(ms, leader)
	watch := watchOffline(t, otherThanAll(ms, victim))

	watch.Expect(victim.Name, false)
	victim.Kill()
	killed := time.Now()
	list := waitStatus(t, leader, victim.Name, api.StatusOffline, testThreshold*time.Second+5*time.Second)
	m, _ := memberOf(list, victim.Name)
	t.Logf("%s OFFLINE %v after kill -9, %v after its last heartbeat (%s)", victim.Name,
		time.Since(killed).Round(time.Millisecond), time.Since(m.LastHeartbeat).Round(time.Millisecond), m.Message)

	r := leader.Run("cluster", "remove", victim.Name)
	if r.Code == 0 || !strings.Contains(r.Stderr, "member "+victim.Name+" (no heartbeat for") || !strings.Contains(r.Stderr, "--force") {
		t.Errorf("clean remove of the OFFLINE %s: exit %d, stderr %q; want a refusal naming it and suggesting --force", victim.Name, r.Code, r.Stderr)
	}

	watch.Expect(victim.Name, true)
	victim.Start()
	waitStatus(t, leader, victim.Name, api.StatusOnline, 10*time.Second)
	waitStatus(t, victim, victim.Name, api.StatusOnline, 10*time.Second)
	watch.Stop()
}

// TestLeaderKilled kills the leader with SIGKILL: the survivors elect a new one, writes
// succeed through either survivor, the new leader neither restarts the dead leader's clock
// nor lets a survivor go OFFLINE, and the dead leader goes OFFLINE, then ONLINE on restart.
func TestLeaderKilled(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	setThreshold(t, ms[0], testThreshold)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	old := agenttest.LeaderOf(t, ms)
	survivors := otherThanAll(ms, old)
	watch := watchOffline(t, survivors)

	watch.Expect(old.Name, false)
	old.Kill()
	for i, s := range survivors {
		waitWrite(t, s, fmt.Sprintf("user.after-leader-%d", i), s.Name, 10*time.Second)
	}
	nl := agenttest.LeaderOf(t, survivors)
	if nl == old {
		t.Fatalf("%s still leads after kill -9", old.Name)
	}
	before, _ := memberOf(mustMembers(t, nl), old.Name)
	list := waitStatus(t, survivors[0], old.Name, api.StatusOffline, testThreshold*time.Second+5*time.Second)
	after, _ := memberOf(list, old.Name)
	if !after.LastHeartbeat.Equal(before.LastHeartbeat) {
		t.Errorf("the new leader %s moved the dead %s's last heartbeat from %s to %s", nl.Name, old.Name,
			before.LastHeartbeat.Format(time.StampMilli), after.LastHeartbeat.Format(time.StampMilli))
	}
	for _, s := range survivors {
		if got := strings.TrimSpace(s.MustRun("config", "get", "user.after-leader-0")); got != survivors[0].Name {
			t.Errorf("%s reads user.after-leader-0 = %q, want %q", s.Name, got, survivors[0].Name)
		}
	}
	watch.Expect(old.Name, true)
	old.Start()
	waitStatus(t, nl, old.Name, api.StatusOnline, 10*time.Second)
	watch.Stop()
}

// TestTwoVoterLosses kills two voters one after the other in a five-member cluster: after
// the first, a stand-by takes its vote, so the cluster is still writable after the second.
func TestTwoVoterLosses(t *testing.T) {
	if testing.Short() {
		t.Skip("five-member failure test skipped in -short mode")
	}
	ms := agenttest.FormCluster(t, 5)
	setThreshold(t, ms[0], testThreshold)
	agenttest.WaitRoles(t, ms[0], 10*time.Second, "3 voters + 2 stand-bys", agenttest.WantRoleCounts(3, 2, 0))
	leader := agenttest.LeaderOf(t, ms)
	roles := agenttest.RoleMap(mustMembers(t, leader))
	var first *agenttest.Agent
	for _, m := range ms {
		if m != leader && agenttest.IsVoter(roles[m.Name]) {
			first = m
			break
		}
	}
	watch := watchOffline(t, otherThanAll(ms, first))
	watch.Expect(first.Name, false)
	first.Kill()
	rest := otherThanAll(ms, first)
	agenttest.WaitRoles(t, leader, 15*time.Second, "a stand-by voting in place of "+first.Name, votersAmong(rest, 3, first))
	waitWrite(t, rest[0], "user.after-first-loss", "yes", 10*time.Second)

	// Second loss: the leader itself.
	watch.Expect(leader.Name, false)
	leader.Kill()
	rest = otherThanAll(rest, leader)
	for i, s := range rest {
		waitWrite(t, s, fmt.Sprintf("user.after-second-loss-%d", i), s.Name, 15*time.Second)
	}
	agenttest.WaitRoles(t, rest[0], 15*time.Second, "the three survivors voting", votersAmong(rest, 3, first, leader))
	for _, s := range rest {
		if got := strings.TrimSpace(s.MustRun("config", "get", "user.after-first-loss")); got != "yes" {
			t.Errorf("%s reads user.after-first-loss = %q after two losses", s.Name, got)
		}
	}
	watch.Stop()
}

// votersAmong checks that exactly n members of running vote, none of gone does, and one
// member leads.
func votersAmong(running []*agenttest.Agent, n int, gone ...*agenttest.Agent) func(map[string]string) error {
	return func(roles map[string]string) error {
		v, _, _, l := agenttest.CountRoles(roles)
		for _, g := range gone {
			if agenttest.IsVoter(roles[g.Name]) {
				return fmt.Errorf("%s, dead, still votes: %v", g.Name, roles)
			}
		}
		live := 0
		for _, m := range running {
			if agenttest.IsVoter(roles[m.Name]) {
				live++
			}
		}
		if live != n || v != n || l != 1 {
			return fmt.Errorf("roles %v: %d voters (%d running), %d leaders; want %d running voters and one leader", roles, v, live, l, n)
		}
		return nil
	}
}

// TestLoweredThresholdTakesEffectAtOnce lowers cluster.offline_threshold below the age of
// every member's recorded heartbeat: the leader, woken by its replica applying the change,
// starts a round at once, so every member is ONLINE again within a second rather than at
// the next round of the old interval (5 s). The leader must not poll the threshold for it:
// an idle leader woke 4 times a second to do so (issue 19).
func TestLoweredThresholdTakesEffectAtOnce(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	setThreshold(t, ms[0], 100) // rounds every 5 s; a heartbeat is recorded again once 50 s old
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	const age = 3 * time.Second
	wait.For(t, 20*time.Second, fmt.Sprintf("every recorded heartbeat older than %v", age), func() error {
		list, err := agenttest.ListMembers(ms[0])
		if err != nil {
			return err
		}
		for _, m := range list {
			if a := time.Since(m.LastHeartbeat); a < age {
				return fmt.Errorf("%s's heartbeat is %v old", m.ServerName, a.Round(time.Millisecond))
			}
		}
		return nil
	})
	lowered := time.Now()
	setThreshold(t, ms[0], 2)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	if took := time.Since(lowered); took > time.Second {
		t.Errorf("every member ONLINE %v after lowering the threshold below their heartbeats' age; want a round at once (< 1 s)", took.Round(time.Millisecond))
	}
}

// TestFrozenLeaderReadsGoOn freezes the leader (SIGSTOP: its connections stay open and
// silent, as with a power cut or a partition) and reads through both followers at once:
// a linearizable read (GET /1.0: a read index asked of the leader) on one, the member
// list (the leader's to answer: the whole request is proxied) on the other. Both, sent to
// the frozen leader, are asked again of the new one when the follower learns of the
// election, instead of waiting for an answer that never comes.
func TestFrozenLeaderReadsGoOn(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	old := agenttest.LeaderOf(t, ms)
	waitWrite(t, old, "user.frozen", "before", 10*time.Second)
	freeze(t, old)
	for _, err := range readsThroughFollowers(t, otherThanAll(ms, old), old, func() {}) {
		t.Errorf("with the leader %s frozen: %v", old.Name, err)
	}
}

// TestKilledLeaderReadsGoOn freezes the leader, sends the two reads of
// TestFrozenLeaderReadsGoOn through the followers, and kills the leader once both wait on
// it (bytes queued unread on two of its connections): their connections are reset after
// the requests were sent. A read changes nothing, so both are asked again of the new
// leader instead of failing with "may or may not have been applied".
func TestKilledLeaderReadsGoOn(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	old := agenttest.LeaderOf(t, ms)
	waitWrite(t, old, "user.frozen", "before", 10*time.Second)
	freeze(t, old)
	frozen := time.Now()
	kill := func() {
		defer func() { t.Logf("%s killed %v after it froze", old.Name, time.Since(frozen).Round(time.Millisecond)) }()
		wait.For(t, 5*time.Second, "two requests waiting unread at the frozen leader", func() error {
			n, err := unreadAt(old.Addr)
			if err == nil && n < 2 {
				err = fmt.Errorf("%d connection(s) to %s with unread bytes", n, old.Addr)
			}
			return err
		})
		old.Kill()
	}
	for _, err := range readsThroughFollowers(t, otherThanAll(ms, old), old, kill) {
		t.Errorf("with the leader %s killed while they waited on it: %v", old.Name, err)
	}
}

// readsThroughFollowers reads through both followers at once while the leader old cannot
// answer — a linearizable read (GET /1.0: a read index asked of the leader) on the first,
// the member list (the leader's to answer: the whole request is proxied) on the second —
// runs then() while they wait, and returns what went wrong: an error, a wrong value, old
// still named leader.
func readsThroughFollowers(t *testing.T, fs []*agenttest.Agent, old *agenttest.Agent, then func()) []error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	errs := make(chan error, 2)
	go func() {
		srv, _, err := fs[0].Client().Server(ctx)
		switch {
		case err != nil:
			errs <- fmt.Errorf("GET /1.0 on %s: %w (after %v)", fs[0].Name, err, time.Since(start).Round(time.Millisecond))
		case srv.Config["user.frozen"] != "before":
			errs <- fmt.Errorf("%s read user.frozen = %q, want %q", fs[0].Name, srv.Config["user.frozen"], "before")
		default:
			t.Logf("GET /1.0 on %s answered %v after %s stopped answering", fs[0].Name, time.Since(start).Round(time.Millisecond), old.Name)
			errs <- nil
		}
	}()
	go func() {
		members, err := fs[1].Client().Members(ctx)
		if err != nil {
			errs <- fmt.Errorf("GET /1.0/cluster/members on %s: %w (after %v)", fs[1].Name, err, time.Since(start).Round(time.Millisecond))
			return
		}
		for _, m := range members {
			if m.ServerName == old.Name && slices.Contains(m.Roles, "database-leader") {
				errs <- fmt.Errorf("%s lists %s, which stopped answering, as the leader", fs[1].Name, old.Name)
				return
			}
		}
		t.Logf("GET /1.0/cluster/members on %s answered %v after %s stopped answering", fs[1].Name, time.Since(start).Round(time.Millisecond), old.Name)
		errs <- nil
	}()
	then()
	var out []error
	for range 2 {
		if err := <-errs; err != nil {
			out = append(out, err)
		}
	}
	return out
}

// unreadAt counts the established TCP connections to addr (an IPv4 host:port) holding
// bytes their owner has not read (/proc/net/tcp's rx_queue).
func unreadAt(addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return 0, err
	}
	ip := ap.Addr().As4()
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != local || f[3] != "01" {
			continue
		}
		if _, rx, ok := strings.Cut(f[4], ":"); ok && strings.Trim(rx, "0") != "" {
			n++
		}
	}
	return n, nil
}

// freeze stops a's daemon with SIGSTOP (SIGCONT at cleanup) and returns once every thread
// of it is stopped: kill(2) returns before the threads are, and a request sent at once
// could still be answered.
func freeze(t *testing.T, a *agenttest.Agent) {
	t.Helper()
	pid := a.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("%s: SIGSTOP: %v", a.Name, err)
	}
	t.Cleanup(func() {
		if pid := a.PID(); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	wait.For(t, 5*time.Second, a.Name+" stopped", func() error {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				return err
			}
			st := string(b)
			if f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:]); len(f) == 0 || (f[0] != "T" && f[0] != "t") {
				return fmt.Errorf("thread %s of %s not stopped yet", task.Name(), a.Name)
			}
		}
		return nil
	})
}
