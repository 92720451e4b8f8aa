package modules

import (
	"strings"
	"testing"
	"time"

	"orch/nodeagent/api"
)

// view builds a member's list-database answer: its role, last log entry and applied entry.
func view(host, role string, logTerm, logIndex, applied uint64, members ...api.DatabaseMember) dbView {
	ms := append([]api.DatabaseMember{{Name: host, Role: role}}, members...)
	return dbView{host: host, name: host, info: api.DatabaseInfo{Member: host, Members: ms,
		LastLogTerm: logTerm, LastLogIndex: logIndex, LastTerm: logTerm, LastIndex: applied}}
}

// TestPickSurvivorByLog is the scenario in the picker (the real one runs in
// integration/cluster TestRecoveryKeepsUnappliedWrite and integration/orchup): the stand-by B
// holds W at index 9 but has applied 8; E, down when W was written, has applied 8 and its
// log ends at 8. B must be chosen although both report the same applied position and E
// comes first in the inventory.
func TestPickSurvivorByLog(t *testing.T) {
	e := view("e", "standby", 2, 8, 8)
	b := view("b", "standby", 2, 9, 8)
	got, why, err := pickSurvivor([]dbView{e, b}, "")
	if err != nil || got.host != "b" {
		t.Fatalf("picked %q (%s, %v); want b, whose log holds index 9", got.host, why, err)
	}
	// A higher last log term wins over a longer log.
	old := view("old", "voter", 1, 20, 20)
	got, _, _ = pickSurvivor([]dbView{old, b}, "")
	if got.host != "b" {
		t.Errorf("picked %q; want b (term 2 beats a longer term-1 log)", got.host)
	}
	// --member overrides; a cut-off member and a spare are never candidates.
	if got, _, _ = pickSurvivor([]dbView{e, b}, "e"); got.host != "e" {
		t.Errorf("--member e picked %q", got.host)
	}
	cut := view("cut", "voter", 3, 30, 30)
	cut.info.CutOff = &api.CutOff{Epoch: api.Epoch{Number: 1, Member: "x", Time: time.Now()}}
	spare := view("spare", "", 3, 30, 30)
	if got, _, _ = pickSurvivor([]dbView{cut, spare, e}, ""); got.host != "e" {
		t.Errorf("picked %q; want e (cut-off and spare members are no candidates)", got.host)
	}
	if table := positionTable([]dbView{e, b}, "b"); !strings.Contains(table, "* b") || !strings.Contains(table, "2/9") {
		t.Errorf("table does not mark b and its log:\n%s", table)
	}
}

// TestRefuseIfQuorum: recovery is refused when a majority of the voters answers as running,
// naming who saw them; a minority does not stop it.
func TestRefuseIfQuorum(t *testing.T) {
	voters := []api.DatabaseMember{{Name: "h2", Role: "voter"}, {Name: "h3", Role: "voter"}}
	h1 := view("h1", "voter", 2, 9, 9, voters...)
	if err := refuseIfQuorum([]dbView{h1}); err != nil {
		t.Fatalf("nobody running: %v", err)
	}
	h1.info.Alive = []string{"h2"}
	if err := refuseIfQuorum([]dbView{h1}); err != nil {
		t.Fatalf("one voter of three running: %v", err)
	}
	h3 := view("h3", "voter", 2, 9, 9, voters...)
	h3.info.Running = true
	err := refuseIfQuorum([]dbView{h1, h3})
	if err == nil || !strings.Contains(err.Error(), "h2 (seen by h1)") || !strings.Contains(err.Error(), "h3 (seen by h3 (its agent))") {
		t.Fatalf("two voters of three running: %v; want a refusal naming h2 and h3 and who saw them", err)
	}
}

// TestStaleReason: a member of an older epoch, or one that learnt it was cut off or
// removed, is stale; one of the newest epoch is not.
func TestStaleReason(t *testing.T) {
	at := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	newest := api.Epoch{Number: 1, Member: "host1", Time: at}
	if r := staleReason(api.DatabaseInfo{Epoch: newest}, newest); r != "" {
		t.Errorf("current member: %q", r)
	}
	if r := staleReason(api.DatabaseInfo{}, newest); !strings.Contains(r, "cut off by a recovery on host1 at 2026-12-06T13:00:00Z") {
		t.Errorf("epoch-0 member: %q", r)
	}
	if r := staleReason(api.DatabaseInfo{CutOff: &api.CutOff{Removed: true, By: "host1"}}, api.Epoch{}); !strings.Contains(r, "removed") {
		t.Errorf("removed member: %q", r)
	}
}

// TestSplitByEpoch: after a recovery only the members of the newest epoch count; with
// quorum among them and --rejoin, the plan recovers nothing and rejoins the cut-off hosts
// and the fresh ones through a running member.
func TestSplitByEpoch(t *testing.T) {
	epoch1 := api.Epoch{Number: 1, Member: "h1", Time: time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)}
	h1 := view("h1", "voter", 3, 40, 40)
	h1.info.Epoch, h1.info.Running = epoch1, true
	h2 := view("h2", "voter", 2, 90, 90, api.DatabaseMember{Name: "h1", Role: "voter"}, api.DatabaseMember{Name: "h3", Role: "voter"})
	current, stale := splitByEpoch([]dbView{h1, h2})
	if len(current) != 1 || current[0].host != "h1" || len(stale) != 1 || stale[0].host != "h2" {
		t.Fatalf("current %v, stale %v", current, stale)
	}
	if err := refuseIfQuorum(current); err == nil {
		t.Fatal("h1 alone in epoch 1 and running has quorum: want a refusal")
	}
	res, err := rejoinPlan(current, stale, []string{"h4"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Data["recover"] != false || res.Data["survivor"] != "h1" || joinAny(res.Data["rejoin"].([]any)) != "h2, h4" {
		t.Errorf("rejoin plan %+v", res.Data)
	}
}
