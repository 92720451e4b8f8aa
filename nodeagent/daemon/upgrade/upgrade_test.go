package upgrade

import (
	"strings"
	"testing"

	"orch/nodeagent/version"
)

var (
	v1 = version.Info{Version: "1", Schema: 1, APILevel: 1}
	v2 = version.Info{Version: "2", Schema: 2, APILevel: 1}
)

func versions(vs ...version.Info) []version.Info { return vs }

func hbMembers(vs ...version.Info) []Member {
	out := make([]Member, len(vs))
	for i, v := range vs {
		out[i] = Member{Name: string(rune('a' + i)), Version: v}
	}
	return out
}

func TestVersionGate(t *testing.T) {
	cases := []struct {
		name    string
		self    string
		mine    version.Info
		db      version.Info
		members []Member
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
		blocked, msg := Gate(c.self, c.mine, c.db, c.members)
		if blocked != (c.want != "") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: blocked=%v %q; want %q", c.name, blocked, msg, c.want)
		}
	}
}

func TestMigrationTarget(t *testing.T) {
	cases := []struct {
		name   string
		ms     []version.Info
		db     version.Info
		latest int
		want   version.Info
		ok     bool
	}{
		{"one member behind", versions(v2, v2, v1), version.Info{Schema: 1, APILevel: 1}, 2, version.Info{}, false},
		{"all upgraded", versions(v2, v2, v2), version.Info{Schema: 1, APILevel: 1}, 2, version.Info{Schema: 2, APILevel: 1}, true},
		{"already done", versions(v2, v2), version.Info{Schema: 2, APILevel: 1}, 2, version.Info{}, false},
		{"API level recorded first time", versions(v1, v1), version.Info{Schema: 1}, 1, version.Info{Schema: 1, APILevel: 1}, true},
		{"capped at what this binary builds", versions(v2, v2), version.Info{Schema: 1, APILevel: 1}, 1, version.Info{}, false},
		{"unknown member version", versions(v2, version.Info{}), version.Info{Schema: 1, APILevel: 1}, 2, version.Info{}, false},
		{"no database version", versions(v2), version.Info{}, 2, version.Info{}, false},
	}
	for _, c := range cases {
		got, ok := Target(c.ms, c.db, c.latest)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: %+v %v; want %+v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestMigrationStatementsAreGuarded(t *testing.T) {
	stmts := Statements(version.Info{Schema: 1, APILevel: 1}, version.Info{Schema: 1, APILevel: 2})
	if len(stmts) != 2 {
		t.Fatalf("API-only migration has %d statements, want the 2 guards", len(stmts))
	}
	for i, s := range stmts {
		if s.Expect == nil || *s.Expect != 1 {
			t.Errorf("statement %d (%s) is not guarded by Expect=1", i, s.SQL)
		}
	}
}
