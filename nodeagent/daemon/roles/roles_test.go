package roles

import (
	"fmt"
	"testing"
)

func members(n int, roles ...string) []Candidate {
	var out []Candidate
	for i := 0; i < n; i++ {
		r := Spare
		if i < len(roles) {
			r = roles[i]
		}
		out = append(out, Candidate{Name: fmt.Sprintf("n%d", i+1), Online: true, Current: r})
	}
	return out
}

func count(plan map[string]string, role string) int {
	n := 0
	for _, r := range plan {
		if r == role {
			n++
		}
	}
	return n
}

func TestPlanRolesGrowth(t *testing.T) {
	cases := []struct {
		n                       int
		voters, standby, spares int
	}{
		{1, 1, 0, 0}, {2, 1, 0, 1}, {3, 3, 0, 0}, {4, 3, 1, 0}, {5, 3, 2, 0}, {6, 3, 2, 1}, {9, 3, 2, 4},
	}
	for _, c := range cases {
		plan := Plan(members(c.n, Voter), 3, 2, "n1")
		if count(plan, Voter) != c.voters || count(plan, Standby) != c.standby || count(plan, Spare) != c.spares {
			t.Errorf("%d members: plan %v, want %d voters %d standby %d spare", c.n, plan, c.voters, c.standby, c.spares)
		}
		if plan["n1"] != Voter {
			t.Errorf("%d members: the leader lost its vote: %v", c.n, plan)
		}
	}
}

func TestPlanRolesPromotesStandbyWhenVoterOffline(t *testing.T) {
	ms := members(5, Voter, Voter, Voter, Standby, Standby)
	ms[1].Online = false
	plan := Plan(ms, 3, 2, "n1")
	if plan["n4"] != Voter {
		t.Fatalf("online stand-by not promoted: %v", plan)
	}
	if plan["n2"] == Voter {
		t.Fatalf("offline voter kept its vote although a replacement was online: %v", plan)
	}
	if count(plan, Voter) != 3 {
		t.Fatalf("voters: %v", plan)
	}
}

func TestPlanRolesKeepsOfflineVoterWithoutReplacement(t *testing.T) {
	ms := members(3, Voter, Voter, Voter)
	ms[2].Online = false
	plan := Plan(ms, 3, 2, "n1")
	if plan["n3"] != Voter {
		t.Fatalf("offline voter dropped with no replacement, shrinking the quorum: %v", plan)
	}
}

func TestPlanRolesIsStable(t *testing.T) {
	ms := members(6, Voter, Standby, Voter, Spare, Voter, Standby)
	plan := Plan(ms, 3, 2, "n1")
	for _, m := range ms {
		if plan[m.Name] != m.Current {
			t.Fatalf("balanced cluster changed roles: %v", plan)
		}
	}
}
