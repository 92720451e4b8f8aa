package daemon

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/version"
)

var (
	v1 = version.Info{Version: "1", Schema: 1, APILevel: 1}
	v2 = version.Info{Version: "2", Schema: 2, APILevel: 1}
)

func hbMembers(vs ...version.Info) []heartbeatMember {
	out := make([]heartbeatMember, len(vs))
	for i, v := range vs {
		out[i] = heartbeatMember{Name: string(rune('a' + i)), Version: v}
	}
	return out
}

func TestVersionGate(t *testing.T) {
	cases := []struct {
		name    string
		self    string
		mine    version.Info
		db      version.Info
		members []heartbeatMember
		want    string // substring of the message; "" means serving
	}{
		{"all equal", "a", v1, v1, hbMembers(v1, v1, v1), ""},
		{"upgraded first waits for the others", "a", v2, v1, hbMembers(v2, v1, v1), "waiting for b, c to be upgraded"},
		{"not yet upgraded keeps serving", "b", v1, v1, hbMembers(v2, v1, v1), ""},
		{"last one left", "a", v2, v1, hbMembers(v2, v2, v1), "waiting for c to be upgraded"},
		{"all upgraded before the migration", "a", v2, v1, hbMembers(v2, v2, v2), ""},
		{"older than the database", "c", v1, v2, hbMembers(v2, v2, v1), "upgrade required"},
		{"a member behind the database holds nobody", "a", v2, v2, hbMembers(v2, v2, v1), ""},
		{"unknown database version", "a", v1, version.Info{}, hbMembers(v1, v1), ""},
		{"unknown member version ignored", "a", v2, v1, hbMembers(v2, version.Info{}), ""},
	}
	for _, c := range cases {
		blocked, msg := versionGate(c.self, c.mine, c.db, c.members)
		if blocked != (c.want != "") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: blocked=%v %q; want %q", c.name, blocked, msg, c.want)
		}
	}
}

func rows(vs ...version.Info) []memberRow {
	out := make([]memberRow, len(vs))
	for i, v := range vs {
		out[i] = memberRow{name: string(rune('a' + i)), ver: v, heartbeat: time.Now()}
	}
	return out
}

func TestMemberStatus(t *testing.T) {
	ms := rows(v2, v1, v1)
	ms[2].heartbeat = time.Now().Add(-time.Minute)
	want := []struct{ status, msg string }{
		{api.StatusBlocked, "Waiting for b, c to be upgraded"},
		{api.StatusOnline, "Fully operational"},
		{api.StatusOffline, "No heartbeat for 1m0s"},
	}
	for i, m := range ms {
		st, msg := memberStatus(m, ms, time.Now(), 20*time.Second, v1)
		if st != want[i].status || msg != want[i].msg {
			t.Errorf("%s: %s %q; want %s %q", m.name, st, msg, want[i].status, want[i].msg)
		}
	}
	// After the migration, a member restarted on the old binary must be upgraded; the
	// others are not held back by it.
	ms = rows(v2, v2, v1)
	for i, m := range ms {
		st, msg := memberStatus(m, ms, time.Now(), 20*time.Second, v2)
		wantBlocked := i == 2
		if (st == api.StatusBlocked) != wantBlocked || wantBlocked && !strings.HasPrefix(msg, "Upgrade required") {
			t.Errorf("after migration %s: %s %q", m.name, st, msg)
		}
	}
}

func TestMigrationTarget(t *testing.T) {
	cases := []struct {
		name   string
		ms     []memberRow
		db     version.Info
		latest int
		want   version.Info
		ok     bool
	}{
		{"one member behind", rows(v2, v2, v1), version.Info{Schema: 1, APILevel: 1}, 2, version.Info{}, false},
		{"all upgraded", rows(v2, v2, v2), version.Info{Schema: 1, APILevel: 1}, 2, version.Info{Schema: 2, APILevel: 1}, true},
		{"already done", rows(v2, v2), version.Info{Schema: 2, APILevel: 1}, 2, version.Info{}, false},
		{"API level recorded first time", rows(v1, v1), version.Info{Schema: 1}, 1, version.Info{Schema: 1, APILevel: 1}, true},
		{"capped at what this binary builds", rows(v2, v2), version.Info{Schema: 1, APILevel: 1}, 1, version.Info{}, false},
		{"unknown member version", rows(v2, version.Info{}), version.Info{Schema: 1, APILevel: 1}, 2, version.Info{}, false},
		{"no database version", rows(v2), version.Info{}, 2, version.Info{}, false},
	}
	for _, c := range cases {
		got, ok := migrationTarget(c.ms, c.db, c.latest)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: %+v %v; want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestMigrationStatementsAreGuarded(t *testing.T) {
	stmts := migrationStatements(version.Info{Schema: 1, APILevel: 1}, version.Info{Schema: 1, APILevel: 2})
	if len(stmts) != 2 {
		t.Fatalf("API-only migration has %d statements, want the 2 guards", len(stmts))
	}
	for i, s := range stmts {
		if s.Expect == nil || *s.Expect != 1 {
			t.Errorf("statement %d (%s) is not guarded by Expect=1", i, s.SQL)
		}
	}
}

func TestOfflineAmong(t *testing.T) {
	ms := rows(v1, v1, v1)
	ms[1].heartbeat = time.Now().Add(-30 * time.Second)
	ms[2].heartbeat = time.Now().Add(-40 * time.Second)
	if err := offlineAmong(ms, time.Now(), 20*time.Second, []string{"a"}); err != nil {
		t.Fatalf("online member refused: %v", err)
	}
	err := offlineAmong(ms, time.Now(), 20*time.Second, nil)
	if !errors.Is(err, ErrMemberOffline) || !strings.Contains(err.Error(), "members b (no heartbeat for 30s), c (no heartbeat for 40s) are offline") {
		t.Fatalf("every member: %v", err)
	}
	if got := errorCode(err); got != http.StatusConflict {
		t.Errorf("status %d, want 409", got)
	}
	wrapped := errors.Join(errors.New("ctx"), offlineAmong(ms, time.Now(), 20*time.Second, []string{"b"}))
	if !errors.Is(wrapped, ErrMemberOffline) || !strings.Contains(wrapped.Error(), "member b (no heartbeat for 30s) is offline") {
		t.Fatalf("one member: %v", wrapped)
	}
	if err := offlineAmong(ms, time.Now(), 20*time.Second, []string{"zz"}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("unknown member: %v", err)
	}
}
