package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestRecoveryKeepsUnappliedWrite is the lost-write scenario: 5 members (3 voters,
// 2 stand-bys), one stand-by (E) down, a write W acknowledged, then the leader and the other
// voters killed at once. The other stand-by (B) holds W in its raft log but has not applied
// it (a follower learns that an entry is committed only with the next replication message).
// list-database must show B's log ahead of its applied index, with the daemon running and
// stopped; recovering on B keeps W and says how many unapplied entries it kept; E, of the old
// epoch, is then cut off and says so; wiped, it joins again.
func TestRecoveryKeepsUnappliedWrite(t *testing.T) {
	ms := agenttest.FormCluster(t, 5)
	agenttest.WaitRoles(t, ms[0], 30*time.Second, "3 voters and 2 stand-bys", agenttest.WantRoleCounts(3, 2, 0))
	voters, standbys := splitRoles(t, ms)
	b, e := standbys[0], standbys[1]
	leader := agenttest.LeaderOf(t, ms)
	wait.For(t, 10*time.Second, e.Name+" caught up with "+b.Name+" before it stops", func() error {
		bi, ei := listDatabase(t, b), listDatabase(t, e)
		if ei.LastIndex == 0 || ei.LastIndex != bi.LastIndex {
			return fmt.Errorf("%s applied %d, %s applied %d", e.Name, ei.LastIndex, b.Name, bi.LastIndex)
		}
		return nil
	})
	e.Stop()

	// W, then kill every voter at once: within the leader's commit timeout (200 ms) B has
	// W in its log without knowing it is committed. W goes through the API from this
	// process, so that nothing (a CLI process exiting) stands between its acknowledgement
	// and the kill.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := leader.Client().PatchConfig(ctx, map[string]string{"user.w": "acknowledged"}, "")
	cancel()
	if err != nil {
		t.Fatalf("W through the leader %s: %v", leader.Name, err)
	}
	for _, v := range voters {
		_ = syscall.Kill(v.PID(), syscall.SIGKILL)
	}
	for _, v := range voters {
		v.Kill()
	}
	running := listDatabase(t, b)
	if !running.Running || running.LastLogIndex <= running.LastIndex {
		t.Fatalf("%s (daemon running): last log entry %d, applied %d; want its log ahead of its applied index (W unapplied)",
			b.Name, running.LastLogIndex, running.LastIndex)
	}
	b.Stop()
	bInfo, eInfo := listDatabase(t, b), listDatabase(t, e)
	t.Logf("%s: log %d/%d applied %d/%d; %s: log %d/%d applied %d/%d", b.Name, bInfo.LastLogIndex, bInfo.LastLogTerm,
		bInfo.LastIndex, bInfo.LastTerm, e.Name, eInfo.LastLogIndex, eInfo.LastLogTerm, eInfo.LastIndex, eInfo.LastTerm)
	if bInfo.Running || bInfo.LastLogIndex != running.LastLogIndex || bInfo.LastLogTerm != running.LastLogTerm {
		t.Errorf("%s stopped: %+v; want the same last log entry as while it ran (%d, term %d)", b.Name, bInfo, running.LastLogIndex, running.LastLogTerm)
	}
	if bInfo.LastLogIndex <= eInfo.LastLogIndex {
		t.Fatalf("%s's log (%d) is not ahead of the stopped %s's (%d): W is not only on %s", b.Name, bInfo.LastLogIndex, e.Name, eInfo.LastLogIndex, b.Name)
	}
	table := b.MustRun("cluster", "list-database")
	if want := fmt.Sprintf("Last raft log entry: index %d (term %d)", bInfo.LastLogIndex, bInfo.LastLogTerm); !strings.Contains(table, want) {
		t.Errorf("list-database table lacks %q:\n%s", want, table)
	}

	out := b.MustRun("cluster", "recover-from-quorum-loss", "--yes")
	t.Logf("recover-from-quorum-loss on %s:\n%s", b.Name, out)
	if want := fmt.Sprintf("Kept %d log entries beyond the last known-committed index %d", bInfo.LastLogIndex-bInfo.LastIndex, bInfo.LastIndex); !strings.Contains(out, want) {
		t.Errorf("recovery output lacks %q", want)
	}
	b.Start()
	wait.For(t, 15*time.Second, "W readable on the recovered "+b.Name, func() error {
		r := b.Run("config", "get", "user.w")
		if got := strings.TrimSpace(r.Stdout); r.Code != 0 || got != "acknowledged" {
			return fmt.Errorf("user.w = %q (exit %d, %s)", got, r.Code, strings.TrimSpace(r.Stderr))
		}
		return nil
	})
	if info := listDatabase(t, b); info.Epoch.Number != 1 || info.Epoch.Member != b.Name {
		t.Errorf("%s after recovery: %+v; want epoch 1 by %s", b.Name, info.Epoch, b.Name)
	}

	// E comes back from the old epoch: the recovered cluster refuses it and it says why.
	e.Start()
	waitCutOff(t, e, b.Name)
	b.MustRun("config", "set", "user.after", "yes")
	if info := listDatabase(t, e); info.CutOff == nil || info.CutOff.Epoch.Member != b.Name {
		t.Errorf("%s's list-database after the cut-off: %+v", e.Name, info)
	}
	b.MustRun("cluster", "remove", "--force", "--yes", e.Name)
	e.MustRunInput(agenttest.PreseedYAML(t, agenttest.TokenPreseed(e, agenttest.NewToken(t, b, e.Name))), "init", "--preseed", "--wipe")
	wait.For(t, 15*time.Second, e.Name+" reading the recovered data after rejoining", func() error {
		r := e.Run("config", "get", "user.after")
		if got := strings.TrimSpace(r.Stdout); r.Code != 0 || got != "yes" {
			return fmt.Errorf("user.after = %q (exit %d, %s)", got, r.Code, strings.TrimSpace(r.Stderr))
		}
		return nil
	})
}

// splitRoles returns the running voters and stand-bys of ms, as the member list says.
func splitRoles(t *testing.T, ms []*agenttest.Agent) (voters, standbys []*agenttest.Agent) {
	t.Helper()
	for name, r := range agenttest.RoleMap(mustMembers(t, ms[0])) {
		switch {
		case agenttest.IsVoter(r):
			voters = append(voters, agenttest.ByName(ms, name))
		case r == api.RoleDatabaseStandby:
			standbys = append(standbys, agenttest.ByName(ms, name))
		}
	}
	if len(voters) != 3 || len(standbys) != 2 {
		t.Fatalf("%d voters, %d stand-bys; want 3 and 2", len(voters), len(standbys))
	}
	return voters, standbys
}

// waitCutOff waits until a's `cluster list` and a client write fail saying that a recovery
// on by cut it off.
func waitCutOff(t *testing.T, a *agenttest.Agent, by string) {
	t.Helper()
	want := "cut off by a recovery on " + by
	wait.For(t, 20*time.Second, a.Name+" saying it was cut off", func() error {
		r := a.Run("cluster", "list")
		if r.Code == 0 || !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "rejoin") {
			return fmt.Errorf("cluster list: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
		return nil
	})
	r := a.Run("config", "set", "user.stale", "write")
	if r.Code == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("%s: a write on the cut-off member: exit %d, stderr %q; want a refusal saying %q", a.Name, r.Code, r.Stderr, want)
	}
}

// TestRecoveryFencing: recover-from-quorum-loss on a stopped member while the others run
// refuses, naming them, and changes nothing; the prompt says what --force risks.
func TestRecoveryFencing(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	wait.For(t, 10*time.Second, "3 raft members in "+ms[0].Name+"'s local database", func() error {
		return localRaftNodes(ms[0], 3)
	})
	ms[0].Stop()
	before := listDatabase(t, ms[0])
	r := ms[0].Run("cluster", "recover-from-quorum-loss", "--yes")
	if r.Code == 0 || !strings.Contains(r.Stderr, ms[1].Name) || !strings.Contains(r.Stderr, ms[2].Name) || !strings.Contains(r.Stderr, "split") {
		t.Fatalf("recovery with the majority alive: exit %d, stdout %q, stderr %q; want a refusal naming %s and %s",
			r.Code, r.Stdout, r.Stderr, ms[1].Name, ms[2].Name)
	}
	after := listDatabase(t, ms[0])
	if len(after.Members) != 3 || after.Epoch.Number != 0 || after.LastLogIndex != before.LastLogIndex {
		t.Errorf("after the refused recovery: %+v; before: %+v", after, before)
	}
	r = ms[0].RunInput("no\n", "cluster", "recover-from-quorum-loss", "--force")
	if r.Code == 0 || !strings.Contains(r.Stdout, "split brain") || !strings.Contains(r.Stdout, ms[1].Name) {
		t.Errorf("--force without --yes: exit %d, prompt %q; want a question naming the running members and the split brain", r.Code, r.Stdout)
	}
	if info := listDatabase(t, ms[0]); len(info.Members) != 3 || info.Epoch.Number != 0 {
		t.Errorf("after answering no: %+v", info)
	}
	probe := ms[0].MustRun("cluster", "list-database", "--probe")
	for _, m := range ms[1:] {
		if !strings.Contains(probe, "Member "+m.Name) || !strings.Contains(probe, "running as a cluster member") {
			t.Errorf("list-database --probe does not show %s running:\n%s", m.Name, probe)
		}
	}
}

// TestOldEpochMembersComeBack: two of three members are killed, the survivor recovers and
// takes a write, one of the two is removed; the two come back together (a majority of the
// old configuration): they must not lead or follow the recovered member, the write stays,
// and each says it was cut off.
func TestOldEpochMembersComeBack(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	wait.For(t, 10*time.Second, "3 raft members in "+ms[0].Name+"'s local database", func() error {
		return localRaftNodes(ms[0], 3)
	})
	survivor, lost := ms[0], ms[1:]
	for _, m := range lost {
		m.Kill()
	}
	survivor.Stop()
	survivor.MustRun("cluster", "recover-from-quorum-loss", "--yes")
	survivor.Start()
	wait.For(t, 15*time.Second, "a write on the recovered "+survivor.Name, func() error {
		r := survivor.Run("config", "set", "user.after-recovery", "kept")
		if r.Code != 0 {
			return fmt.Errorf("exit %d: %s", r.Code, strings.TrimSpace(r.Stderr))
		}
		return nil
	})
	wait.For(t, 10*time.Second, "epoch 1 by "+survivor.Name+" in the replicated database", func() error {
		return replicatedEpoch(survivor, 1)
	})
	// One lost member is removed, as orch recover does: the survivor no longer sends it
	// heartbeats, so it must learn from its own connections that it was cut off.
	survivor.MustRun("cluster", "remove", "--force", "--yes", lost[0].Name)
	for _, m := range lost {
		m.Start()
	}
	for _, m := range lost {
		waitCutOff(t, m, survivor.Name)
	}
	for range 3 { // across a few of the survivor's heartbeat rounds
		if got := strings.TrimSpace(survivor.MustRun("config", "get", "user.after-recovery")); got != "kept" {
			t.Fatalf("the write on the recovered member reads %q after the old members came back", got)
		}
		info := listDatabase(t, survivor)
		if len(info.Members) != 1 || info.Members[0].Name != survivor.Name {
			t.Fatalf("the recovered member's database members: %+v", info.Members)
		}
		if list := mustMembers(t, survivor); len(list) != 2 {
			t.Fatalf("the removed member reappeared: %v", statuses(list))
		}
		time.Sleep(500 * time.Millisecond) // observing that nothing changes, not waiting for a condition
	}
}

// TestQuorumLossMessages (issue 20): after two of three members die, requests on the
// survivor say that quorum is lost and point to list-database, recover-from-quorum-loss and
// orch recover, instead of blaming a dead "leader at ADDR".
func TestQuorumLossMessages(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	for _, m := range ms[1:] {
		m.Kill()
	}
	for _, args := range [][]string{{"config", "set", "user.k", "v"}, {"cluster", "list"}, {"config", "get", "user.k"}} {
		var r agenttest.Result
		wait.For(t, 20*time.Second, "`"+strings.Join(args, " ")+"` saying quorum is lost", func() error {
			r = ms[0].Run(args...)
			if r.Code == 0 || !strings.Contains(r.Stderr, "quorum is lost") {
				return fmt.Errorf("exit %d: %s", r.Code, strings.TrimSpace(r.Stderr))
			}
			return nil
		})
		for _, want := range []string{"nodeagent cluster list-database", "recover-from-quorum-loss", "orch recover"} {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("`%s`: %q does not point to %s", strings.Join(args, " "), r.Stderr, want)
			}
		}
		if strings.Contains(r.Stderr, "leader at") {
			t.Errorf("`%s` still blames a leader: %q", strings.Join(args, " "), r.Stderr)
		}
	}
}

// TestRemovedMemberSaysSo (issue 20): a member removed with --force while it was down
// starts again: it must say that it was removed (in `cluster list` and errors) rather than
// stand for election with its stale member list; wiped, it joins again.
func TestRemovedMemberSaysSo(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	gone := ms[2]
	gone.Kill()
	leader := agenttest.LeaderOf(t, ms[:2])
	leader.MustRun("cluster", "remove", "--force", "--yes", gone.Name)
	gone.Start()
	want := "was removed from the cluster"
	wait.For(t, 20*time.Second, gone.Name+" saying it was removed", func() error {
		r := gone.Run("cluster", "list")
		if r.Code == 0 || !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stderr, "rejoin") {
			return fmt.Errorf("cluster list: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
		}
		return nil
	})
	if r := gone.Run("config", "set", "user.k", "v"); r.Code == 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("a write on the removed member: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if list := mustMembers(t, leader); len(list) != 2 {
		t.Errorf("the removed member reappeared: %v", statuses(list))
	}
	gone.MustRunInput(agenttest.PreseedYAML(t, agenttest.TokenPreseed(gone, agenttest.NewToken(t, leader, gone.Name))), "init", "--preseed", "--wipe")
	waitAllOnline(t, leader, 3, 15*time.Second)
}

// replicatedEpoch checks the epoch rows of a's replica of the global database.
func replicatedEpoch(a *agenttest.Agent, want int64) error {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(a.Dir, "database", "global.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	var n, by, at int64
	err = db.QueryRow(`SELECT (SELECT value FROM meta WHERE key = 'epoch'), (SELECT value FROM meta WHERE key = ?),
		(SELECT value FROM meta WHERE key = 'epoch_time')`, "epoch_member:"+a.Name).Scan(&n, &by, &at)
	if err != nil {
		return err
	}
	if n != want || by != want || at == 0 {
		return fmt.Errorf("epoch %d, epoch_member:%s %d, epoch_time %d", n, a.Name, by, at)
	}
	return nil
}
