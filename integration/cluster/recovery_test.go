package cluster

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestQuorumLossRecovery loses two members of three for good: list-database on the
// survivor with its daemon stopped shows the database members and its last raft index;
// recover-from-quorum-loss refuses while the daemon runs, then makes it the only voter; on
// restart every row is there, the lost members are OFFLINE at once (with the default 20 s
// threshold), `cluster remove --force --yes` drops them, the cluster is writable and a new
// member can join.
func TestQuorumLossRecovery(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	want := map[string]string{}
	for i := range 5 {
		k, v := fmt.Sprintf("user.row-%d", i), ms[i%3].Name
		ms[i%3].MustRun("config", "set", k, v)
		want[k] = v
	}
	survivor := ms[0]
	lost := ms[1:]
	settledReplicas(t, ms, want)
	// Raft members reach the node-local database with the heartbeat after a role change.
	wait.For(t, 10*time.Second, "3 raft members in "+survivor.Name+"'s local database", func() error {
		return localRaftNodes(survivor, 3)
	})
	for _, m := range lost {
		m.Kill()
	}

	r := survivor.Run("cluster", "recover-from-quorum-loss", "--yes")
	if r.Code == 0 || !strings.Contains(r.Stderr, "daemon is running") {
		t.Fatalf("recover while the daemon runs: exit %d, stderr %q; want a refusal", r.Code, r.Stderr)
	}
	survivor.Stop()

	info := listDatabase(t, survivor)
	if len(info.Members) != 3 || info.LastIndex == 0 || info.LastTerm == 0 {
		t.Errorf("list-database with the daemon stopped: %+v; want 3 members and the last index and term", info)
	}
	table := survivor.MustRun("cluster", "list-database")
	if !strings.Contains(table, fmt.Sprintf("Last applied entry: index %d (term %d)", info.LastIndex, info.LastTerm)) ||
		!strings.Contains(table, fmt.Sprintf("Last raft log entry: index %d (term %d)", info.LastLogIndex, info.LastLogTerm)) {
		t.Errorf("list-database table does not give the last index and term:\n%s", table)
	}
	for _, m := range ms {
		if !strings.Contains(table, m.Name) || !strings.Contains(table, m.Addr) {
			t.Errorf("list-database table does not list %s at %s:\n%s", m.Name, m.Addr, table)
		}
	}

	out := survivor.MustRun("cluster", "recover-from-quorum-loss", "--yes")
	if !strings.Contains(out, "is now the only database member") {
		t.Errorf("recover printed %q", out)
	}
	if info := listDatabase(t, survivor); len(info.Members) != 1 || info.Members[0].Name != survivor.Name {
		t.Errorf("list-database after recovery: %+v; want %s alone", info.Members, survivor.Name)
	}
	survivor.Start()
	// At once: the lost members' last heartbeats are younger than the 20 s threshold.
	list := waitStatus(t, survivor, survivor.Name, api.StatusOnline, 10*time.Second)
	wait.For(t, 5*time.Second, "the lost members OFFLINE right after the restart", func() error {
		var err error
		if list, err = agenttest.ListMembers(survivor); err != nil {
			return err
		}
		for _, m := range lost {
			if got, _ := memberOf(list, m.Name); got.Status != api.StatusOffline {
				return fmt.Errorf("%s is %s (%s)", m.Name, got.Status, got.Message)
			}
		}
		return nil
	})
	for k, v := range want {
		if got := strings.TrimSpace(survivor.MustRun("config", "get", k)); got != v {
			t.Errorf("after recovery %s = %q, want %q", k, got, v)
		}
	}

	r = survivor.Run("cluster", "remove", lost[0].Name)
	if r.Code == 0 || !strings.Contains(r.Stderr, lost[0].Name) || !strings.Contains(r.Stderr, "offline") {
		t.Errorf("clean remove of the lost %s: exit %d, stderr %q; want a refusal naming it", lost[0].Name, r.Code, r.Stderr)
	}
	for _, m := range lost {
		survivor.MustRun("cluster", "remove", "--force", "--yes", m.Name)
	}
	survivor.MustRun("config", "set", "user.after-recovery", "yes")
	if list := mustMembers(t, survivor); len(list) != 1 {
		t.Errorf("after removing the lost members: %v", statuses(list))
	}

	node4 := agenttest.Start(t, "node4", agenttest.NewAddr(t))
	agenttest.JoinWithToken(t, survivor, node4)
	waitAllOnline(t, survivor, 2, 10*time.Second)
	if got := strings.TrimSpace(node4.MustRun("config", "get", "user.row-1")); got != want["user.row-1"] {
		t.Errorf("the new member reads user.row-1 = %q, want %q", got, want["user.row-1"])
	}
	node4.MustRun("config", "set", "user.from-new-member", "yes")
}

// listDatabase runs `cluster list-database --format json` on a.
func listDatabase(t *testing.T, a *agenttest.Agent) api.DatabaseInfo {
	t.Helper()
	var info api.DatabaseInfo
	out := a.MustRun("cluster", "list-database", "--format", "json")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("list-database --format json: %v: %s", err, out)
	}
	return info
}

// localRaftNodes checks that a's node-local database (read beside the daemon) records n raft
// members.
func localRaftNodes(a *agenttest.Agent, n int) error {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(a.Dir, "local.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	var got int
	if err := db.QueryRow(`SELECT count(*) FROM raft_nodes`).Scan(&got); err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("%d raft members recorded", got)
	}
	return nil
}
