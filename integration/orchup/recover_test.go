package orchup

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/orchestrator/clientstore"
)

// TestUpAfterRecover (issue 20): after `orch recover` on host1 with host2 and host3 lost and
// a write on host1, host2 and host3 come back; `orch up` must not start their agents (two
// old members would outvote the recovered one): it names them and says how to bring them
// back, the write stays, the removed members do not reappear, and a re-run changes nothing.
// `orch recover --rejoin` then wipes and rejoins them.
func TestUpAfterRecover(t *testing.T) {
	e := newEnv(t, 3)
	e.mustUp()
	for _, h := range []string{"host2", "host3"} {
		if err := e.lab.Host(h).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.orch("recover", "--yes"); r.code != 0 {
		t.Fatalf("recover exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.waitMembers("host1 alone", func(ms []api.ClusterMember) bool { return len(ms) == 1 && allOnline(ms) })
	patch(t, e, "user.after-recovery", "kept")
	for _, h := range []string{"host2", "host3"} {
		if err := e.lab.Host(h).Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for run := 1; run <= 2; run++ {
		r := e.up()
		if r.code == 0 {
			t.Fatalf("orch up #%d with cut-off members exited 0\n%s", run, r.stdout)
		}
		for _, h := range []string{"host2", "host3"} {
			if !strings.Contains(r.stdout, h+" (member "+h+") was cut off by a recovery on host1") || !strings.Contains(r.stdout, "orch recover --rejoin") {
				t.Errorf("orch up #%d does not name %s as cut off with the way back:\n%s", run, h, r.stdout)
			}
			if agentRunning(t, e, h) {
				t.Fatalf("orch up #%d started %s's agent\n%s", run, h, r.stdout)
			}
		}
		if run == 2 {
			if changed := changedHosts(r.stdout); len(changed) > 0 {
				t.Errorf("the re-run of orch up changed %v\n%s", changed, r.stdout)
			}
		}
		ms := e.members()
		if len(ms) != 1 || ms[0].ServerName != "host1" {
			t.Fatalf("after orch up #%d the members are %+v; want host1 alone", run, ms)
		}
		checkWrites(t, e, map[string]string{"user.after-recovery": "kept"})
	}

	r := e.orch("recover", "--yes", "--rejoin")
	if r.code != 0 {
		t.Fatalf("recover --rejoin exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.waitMembers("host1, host2 and host3", func(ms []api.ClusterMember) bool { return len(ms) == 3 && allOnline(ms) })
	checkWrites(t, e, map[string]string{"user.after-recovery": "kept"})
	if r := e.up(); r.code != 0 || len(changedHosts(r.stdout)) > 0 {
		t.Fatalf("orch up after the rejoin: exit %d, changed %v\n%s%s", r.code, changedHosts(r.stdout), r.stdout, r.stderr)
	}
}

// TestRecoverAgentsKilled (issue 20): only the agents of host2 and host3 die, the hosts stay
// reachable; `orch recover` must end with host1 alone and the others removed (not "no lost
// member" with two OFFLINE members left), exit 0 and say what it did to each host.
func TestRecoverAgentsKilled(t *testing.T) {
	e := newEnv(t, 3)
	e.mustUp()
	patch(t, e, "user.before", "written")
	for _, h := range []string{"host2", "host3"} {
		if out, err := e.lab.Host(h).Exec(t.Context(), "sh", "-c", "kill -9 $(cat /var/lib/nodeagent/nodeagent.pid)"); err != nil {
			t.Fatalf("killing %s's agent: %v %s", h, err, out)
		}
	}
	r := e.orch("recover", "--yes")
	if r.code != 0 {
		t.Fatalf("recover exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("orch recover:\n%s", r.stdout)
	for _, h := range []string{"host2", "host3"} {
		if !strings.Contains(r.stdout, h+": agent stopped, member removed") {
			t.Errorf("the recovery does not say what it did to %s:\n%s", h, r.stdout)
		}
	}
	ms := e.waitMembers("host1 alone", func(ms []api.ClusterMember) bool { return len(ms) == 1 && allOnline(ms) })
	if ms[0].ServerName != "host1" {
		t.Fatalf("after recovery: %+v", ms)
	}
	checkWrites(t, e, map[string]string{"user.before": "written"})
	if r := e.up(); r.code == 0 || !strings.Contains(r.stdout, "orch recover --rejoin") || agentRunning(t, e, "host2") {
		t.Errorf("orch up after the recovery: exit %d, host2 agent running %v\n%s", r.code, agentRunning(t, e, "host2"), r.stdout)
	}
}

// patch writes one config key through host1's client address.
func patch(t *testing.T, e *env, k, v string) {
	t.Helper()
	st, err := clientstore.Open(e.state)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := st.ClientAny(e.lab.Host("host1").Addr + ":8443")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.PatchConfig(t.Context(), map[string]string{k: v}, ""); err != nil {
		t.Fatalf("writing %s through host1: %v", k, err)
	}
}

// agentRunning asks the host's agent CLI whether its daemon answers.
func agentRunning(t *testing.T, e *env, host string) bool {
	t.Helper()
	running, err := tryAgentRunning(t, e, host)
	if err != nil {
		t.Fatal(err)
	}
	return running
}

// tryAgentRunning is agentRunning with its failure an error.
func tryAgentRunning(t *testing.T, e *env, host string) (bool, error) {
	out, err := e.lab.Host(host).Exec(t.Context(), "/var/lib/nodeagent/bin/nodeagent", "--dir", "/var/lib/nodeagent", "cluster", "list-database", "--format", "json")
	if err != nil {
		return false, fmt.Errorf("%s: list-database: %w", host, err)
	}
	var info api.DatabaseInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return false, fmt.Errorf("%s: list-database: %w: %s", host, err, out)
	}
	return info.Running, nil
}

var recapLine = regexp.MustCompile(`(?m)^(\S+)\s+: ok=\d+\s+changed=(\d+)`)

// changedHosts lists the hosts whose recap line counts changes.
func changedHosts(out string) []string {
	var hs []string
	for _, m := range recapLine.FindAllStringSubmatch(out, -1) {
		if m[2] != "0" {
			hs = append(hs, fmt.Sprintf("%s (changed=%s)", m[1], m[2]))
		}
	}
	return hs
}

// TestRecoverRefusedWithQuorum (issue 14): `orch recover` on a healthy cluster refuses,
// naming the voters that answered, and changes nothing.
func TestRecoverRefusedWithQuorum(t *testing.T) {
	e := newEnv(t, 3)
	e.mustUp()
	r := e.orch("recover", "--yes")
	if r.code == 0 || !strings.Contains(r.stdout, "refusing to recover") {
		t.Fatalf("recover on a healthy cluster: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, h := range []string{"host1", "host2", "host3"} {
		if !strings.Contains(r.stdout, h+" (seen by") {
			t.Errorf("the refusal does not name %s as running:\n%s", h, r.stdout)
		}
	}
	ms := e.members()
	if len(ms) != 3 || !allOnline(ms) {
		t.Fatalf("after the refused recovery: %+v", ms)
	}
	out, err := e.lab.Host("host1").Exec(t.Context(), "/var/lib/nodeagent/bin/nodeagent", "--dir", "/var/lib/nodeagent", "cluster", "list-database", "--format", "json")
	var info api.DatabaseInfo
	if err != nil || json.Unmarshal(out, &info) != nil || info.Epoch.Number != 0 || len(info.Members) != 3 {
		t.Fatalf("host1 after the refused recovery: %v %s", err, out)
	}
}

// TestRecoverPicksNewestLog is the lost-write scenario through `orch recover`: 5
// hosts (3 voters, 2 stand-bys), the stand-by E stopped, a write W acknowledged, the leader
// killed at once and then the other voters. The other stand-by B holds W in its log without
// having applied it; E (reachable again, agent stopped) is behind. orch recover must choose
// B — both are stand-bys, and E may come first in the inventory — and W must survive.
func TestRecoverPicksNewestLog(t *testing.T) {
	e := newEnv(t, 5)
	e.mustUp()
	ms := e.waitMembers("3 voters and 2 stand-bys", func(ms []api.ClusterMember) bool {
		return len(ms) == 5 && roleCount(ms, api.RoleDatabase) == 3 && roleCount(ms, api.RoleDatabaseStandby) == 2
	})
	var leader string
	var voters, standbys []string
	for _, m := range ms {
		switch {
		case hasRole(m, api.RoleDatabaseLeader):
			leader = m.ServerName
		case hasRole(m, api.RoleDatabase):
			voters = append(voters, m.ServerName)
		case hasRole(m, api.RoleDatabaseStandby):
			standbys = append(standbys, m.ServerName)
		}
	}
	sort.Strings(standbys)
	stale, b := standbys[0], standbys[1] // the stale one first in inventory order
	if out, err := e.lab.Host(stale).Exec(t.Context(), "sh", "-c", "kill $(cat /var/lib/nodeagent/nodeagent.pid)"); err != nil {
		t.Fatalf("stopping %s's agent: %v %s", stale, err, out)
	}
	waitStopped(t, e, stale)
	st, err := clientstore.Open(e.state)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := st.ClientAny(e.lab.Host(leader).Addr + ":8443")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.PatchConfig(t.Context(), map[string]string{"user.w": "acknowledged"}, ""); err != nil {
		t.Fatalf("W through the leader %s: %v", leader, err)
	}
	for _, h := range append([]string{leader}, voters...) { // the leader first: nobody tells B W is committed
		if err := e.lab.Host(h).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	r := e.orch("recover", "--yes")
	t.Logf("orch recover:\n%s", r.stdout)
	if r.code != 0 {
		t.Fatalf("recover exited %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "recover on "+b+":") {
		t.Fatalf("orch recover did not choose %s, whose log holds W", b)
	}
	e.waitMembers(b+" alone", func(ms []api.ClusterMember) bool { return len(ms) == 1 && ms[0].ServerName == b && allOnline(ms) })
	bc, err := st.ClientAny(e.lab.Host(b).Addr + ":8443")
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	s, _, err := bc.Server(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.Config["user.w"] != "acknowledged" {
		t.Fatalf("the acknowledged write W is lost after recovering on %s: user.w = %q", b, s.Config["user.w"])
	}
}

func hasRole(m api.ClusterMember, role string) bool {
	for _, r := range m.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// waitStopped waits until the host's agent no longer answers.
func waitStopped(t *testing.T, e *env, host string) {
	t.Helper()
	wait.ForEvery(t, 30*time.Second, 50*time.Millisecond, host+"'s agent to stop after SIGTERM", func() error {
		// While it stops, the daemon may still answer, or answer list-database with an
		// error ("runs but did not answer"): both mean not stopped yet.
		running, err := tryAgentRunning(t, e, host)
		switch {
		case err != nil:
			return err
		case running:
			return errors.New("its agent still answers")
		}
		return nil
	})
}
