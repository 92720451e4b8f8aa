package daemon

import (
	"testing"
	"time"

	"orch/nodeagent/version"
)

// TestRoundStatements: a round writes an answering member only when its recorded heartbeat
// is half the threshold old or its version changed, and a member that stopped answering at
// the time the leader last heard it; nothing at all when every record is fresh.
func TestRoundStatements(t *testing.T) {
	d := &Daemon{health: newHealth()}
	v := version.Info{Version: "1.0", Schema: 3, APILevel: 7}
	now := time.UnixMilli(1_000_000_000)
	th := 20 * time.Second
	row := func(name string, age time.Duration, ver version.Info) memberRow {
		return memberRow{name: name, ver: ver, heartbeat: now.Add(-age)}
	}
	fresh := []memberRow{row("a", 2*time.Second, v), row("b", 9*time.Second, v), row("c", 9*time.Second, v)}
	if got := d.roundStatements(fresh, map[string]version.Info{"a": v, "b": v, "c": v}, now, th); len(got) != 0 {
		t.Errorf("fresh records: %d statements, want none", len(got))
	}
	newer := v
	newer.APILevel++
	members := []memberRow{row("a", 2*time.Second, v), row("b", 10*time.Second, v), row("c", 9*time.Second, v), row("d", time.Second, v)}
	got := d.roundStatements(members, map[string]version.Info{"a": v, "b": v, "d": newer}, now.Add(time.Second), th)
	want := map[string]int64{"b": now.Add(time.Second).UnixMilli(), "c": now.UnixMilli(), "d": now.Add(time.Second).UnixMilli()}
	if len(got) != len(want) {
		t.Fatalf("%d statements %v, want %d (b: half the threshold old, c: last heard, d: new version)", len(got), got, len(want))
	}
	for _, s := range got {
		name := s.Args[len(s.Args)-1].(string)
		if at, ok := want[name]; !ok || s.Args[0].(int64) != at {
			t.Errorf("statement %v: want %s at %d", s, name, at)
		}
	}
}
