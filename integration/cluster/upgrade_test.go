package cluster

import (
	"context"
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
	orchschema "orch/nodeagent/schema"
)

// TestRollingUpgrade restarts the members of a three-member cluster one by one on a binary
// with one more schema update (tag schemav2). Each upgraded member is BLOCKED until the last
// one is upgraded: it refuses writes saying on whom it waits, and the members not yet
// upgraded keep serving and list it BLOCKED. After the last upgrade every member serves
// without a restart, the database is at the schemav2 build's schema with the update applied exactly once, and
// no row is lost. A member restarted on the old binary then says "upgrade required".
func TestRollingUpgrade(t *testing.T) {
	binB := upgraded(t)
	ms := agenttest.FormCluster(t, 3)
	for i, m := range ms {
		m.MustRun("config", "set", fmt.Sprintf("user.before-%d", i), m.Name)
	}
	waitAllOnline(t, ms[0], 3, 10*time.Second)

	for i, m := range ms {
		if code := m.Stop(); code != 0 {
			t.Fatalf("%s exited %d on SIGTERM", m.Name, code)
		}
		m.StartWith(binB)
		if i == len(ms)-1 {
			break
		}
		waiting := names(ms[i+1:])
		for _, u := range ms[:i+1] {
			checkBlocked(t, u, waiting)
		}
		for _, o := range ms[i+1:] {
			o.MustRun("config", "set", fmt.Sprintf("user.during-%d-%s", i, o.Name), "yes")
			list := waitStatus(t, o, m.Name, api.StatusBlocked, 10*time.Second)
			if got, _ := memberOf(list, m.Name); !strings.Contains(got.Message, "Waiting for "+strings.Join(waiting, ", ")) {
				t.Errorf("%s lists %s as %s %q; want it waiting for %s", o.Name, m.Name, got.Status, got.Message, waiting)
			}
		}
	}

	for i, m := range ms {
		waitWrite(t, m, "user.after-upgrade-"+m.Name, "yes", 10*time.Second)
		if i == 0 {
			waitAllOnline(t, m, 3, 10*time.Second)
		}
	}
	for _, m := range ms {
		wait.For(t, 10*time.Second, m.Name+"'s replica at the schemav2 build's schema", func() error { return checkSchema2(m) })
	}
	want := map[string]string{}
	for i, m := range ms {
		want[fmt.Sprintf("user.before-%d", i)] = m.Name
		want["user.after-upgrade-"+m.Name] = "yes"
	}
	for i := range ms[:len(ms)-1] {
		for _, o := range ms[i+1:] {
			want[fmt.Sprintf("user.during-%d-%s", i, o.Name)] = "yes"
		}
	}
	settledReplicas(t, ms, want)

	t.Run("downgrade refused", func(t *testing.T) { downgrade(t, ms, binB) })
}

// names lists the members' names.
func names(ms []*agenttest.Agent) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// checkBlocked checks that u refuses a write and `cluster list` saying it waits for the
// members named waiting, while GET /1.0 still answers and says so.
func checkBlocked(t *testing.T, u *agenttest.Agent, waiting []string) {
	t.Helper()
	want := "waiting for " + strings.Join(waiting, ", ") + " to be upgraded"
	wait.For(t, 10*time.Second, u.Name+" blocked, "+want, func() error {
		r := u.Run("config", "set", "user.blocked-write", u.Name)
		if r.Code == 0 || !strings.Contains(r.Stderr, want) {
			return fmt.Errorf("config set on %s: exit %d, stderr %q", u.Name, r.Code, r.Stderr)
		}
		return nil
	})
	r := u.Run("cluster", "list")
	if r.Code == 0 || !strings.Contains(r.Stderr, "blocked") || !strings.Contains(r.Stderr, want) {
		t.Errorf("cluster list on the blocked %s: exit %d, stdout %q, stderr %q; want it to say it is blocked, %s", u.Name, r.Code, r.Stdout, r.Stderr, want)
	}
	s, _ := agenttest.Server(t, u)
	if !s.Environment.Blocked || !strings.Contains(s.Environment.Message, want) {
		t.Errorf("GET /1.0 on %s: blocked=%v %q", u.Name, s.Environment.Blocked, s.Environment.Message)
	}
}

// checkSchema2 checks a's replica: the schemav2 build's schema_version (this build's + 1),
// and the schemav2 update applied once.
func checkSchema2(a *agenttest.Agent) error {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(a.Dir, "database", "global.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var schema, probes int
	if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&schema); err != nil {
		return err
	}
	if schema != orchschema.Latest()+1 {
		return fmt.Errorf("schema_version %d", schema)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_probe`).Scan(&probes); err != nil {
		return err
	}
	if probes != 1 {
		return fmt.Errorf("the schemav2 update ran %d times", probes)
	}
	return nil
}

// downgrade restarts one member on the old binary: it refuses to serve saying "upgrade
// required", the others keep serving (not blocked by it) and list it BLOCKED; back on the
// new binary it serves again.
func downgrade(t *testing.T, ms []*agenttest.Agent, binB string) {
	old := ms[1]
	old.Stop()
	old.StartWith(agenttest.Bin())
	wait.For(t, 10*time.Second, old.Name+" saying upgrade required", func() error {
		r := old.Run("config", "set", "user.old-binary", "yes")
		if r.Code == 0 || !strings.Contains(r.Stderr, "upgrade required") {
			return fmt.Errorf("config set on %s: exit %d, stderr %q", old.Name, r.Code, r.Stderr)
		}
		return nil
	})
	for _, o := range otherThanAll(ms, old) {
		o.MustRun("config", "set", "user.beside-old-"+o.Name, "yes")
		list := waitStatus(t, o, old.Name, api.StatusBlocked, 10*time.Second)
		if got, _ := memberOf(list, old.Name); !strings.HasPrefix(got.Message, "Upgrade required") {
			t.Errorf("%s lists %s with %q; want Upgrade required", o.Name, old.Name, got.Message)
		}
		for _, m := range list {
			if m.ServerName != old.Name && m.Status != api.StatusOnline {
				b, _ := json.Marshal(list)
				t.Errorf("%s is %s beside an old member: %s", m.ServerName, m.Status, b)
			}
		}
	}
	old.Stop()
	old.StartWith(binB)
	waitWrite(t, old, "user.back-on-new", "yes", 10*time.Second)
}
