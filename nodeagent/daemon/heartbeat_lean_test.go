package daemon

import (
	"testing"

	"orch/nodeagent/version"
)

// TestLeanHeartbeats: the member-list hash changes with any member's name, address, role or
// version; a heartbeat without the list is taken (heard) only by a member holding the list
// of that hash; the leader sends the lean form only to members that said they hold it, and
// counts as "answered" only members that did (or everyone on its first round).
func TestLeanHeartbeats(t *testing.T) {
	v := version.Info{Version: "1.0", Schema: 3, APILevel: 7}
	ms := []heartbeatMember{{Name: "a", Address: "10.0.0.1:8443", Role: roleVoter, Version: v}, {Name: "b", Address: "10.0.0.2:8443", Role: roleSpare, Version: v}}
	base := membersHash(ms)
	for i, change := range []func(m *heartbeatMember){
		func(m *heartbeatMember) { m.Name = "c" },
		func(m *heartbeatMember) { m.Address = "10.0.0.3:8443" },
		func(m *heartbeatMember) { m.Role = roleStandby },
		func(m *heartbeatMember) { m.Version.APILevel++ },
	} {
		c := append([]heartbeatMember(nil), ms...)
		change(&c[1])
		if membersHash(c) == base {
			t.Errorf("change %d: same hash", i)
		}
	}
	d := &Daemon{health: newHealth()}
	d.applyLeanHeartbeat(heartbeat{LeaderAddress: "10.0.0.1:8443"}, base)
	if d.health.heard || d.health.leader != "10.0.0.1:8443" {
		t.Errorf("a member holding no list took a lean heartbeat as heard (heard=%v leader=%q)", d.health.heard, d.health.leader)
	}
	d.health.members, d.health.hash = ms, base
	d.applyLeanHeartbeat(heartbeat{LeaderAddress: "10.0.0.1:8443"}, base)
	if !d.health.heard || len(d.health.members) != 2 {
		t.Errorf("a member holding the list: heard=%v members=%d", d.health.heard, len(d.health.members))
	}
	h := newHealth()
	if !h.answered("b") {
		t.Error("first round: every member is contacted within the bound")
	}
	h.setHeld("a", base)
	if h.holds("b", base) || !h.holds("a", base) || h.answered("b") || !h.answered("a") {
		t.Error("held/answered wrong after a answered")
	}
	h.setHeld("a", "")
	h.forgetHeld()
	if h.holds("a", base) {
		t.Error("forgotten")
	}
}
