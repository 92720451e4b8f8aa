package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
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

// recordingRaft is a raft configuration that records the changes asked of it, and whose
// members catch up once caughtUp says so (the real WaitCaughtUp is tested on real raft in
// nodeagent/store, TestWaitCaughtUp).
type recordingRaft struct {
	calls    []string
	caughtUp map[string]bool
	slow     bool // WaitCaughtUp of a member behind ends with its own timeout
}

func (r *recordingRaft) AddVoter(_ context.Context, id, _ string) error {
	r.calls = append(r.calls, "voter "+id)
	return nil
}
func (r *recordingRaft) DemoteVoter(_ context.Context, id string) error {
	r.calls = append(r.calls, "demote "+id)
	return nil
}
func (r *recordingRaft) AddNonvoter(_ context.Context, id, _ string) error {
	r.calls = append(r.calls, "nonvoter "+id)
	return nil
}
func (r *recordingRaft) RemoveServer(_ context.Context, id string) error {
	r.calls = append(r.calls, "remove "+id)
	return nil
}
func (r *recordingRaft) WaitCaughtUp(ctx context.Context, id string) error {
	r.calls = append(r.calls, "caught up? "+id)
	switch {
	case r.caughtUp[id]:
		return nil
	case r.slow:
		return fmt.Errorf("%s is behind: %w", id, context.DeadlineExceeded) // CatchUpTimeout passed
	}
	<-ctx.Done()
	return ctx.Err()
}

// When the third member joins, the spare (n2) and the joiner (n3) become voters: each is
// added as a non-voter, waited for until it holds the log, and only then made a voter, one
// after the other. Both were made voters at once before either caught up, and the leader
// lost its quorum for its lease in the middle of the join.
func TestApplyPromotesOneCaughtUpVoterAtATime(t *testing.T) {
	ms := members(3, Voter, Spare, Spare)
	plan := Plan(ms, 3, 2, "n1")
	r := &recordingRaft{caughtUp: map[string]bool{"n2": true, "n3": true}}
	kicked := 0
	if err := Apply(context.Background(), r, ms, plan, slog.New(slog.DiscardHandler), func() { kicked++ }); err != nil {
		t.Fatal(err)
	}
	want := []string{"nonvoter n2", "caught up? n2", "voter n2", "nonvoter n3", "caught up? n3", "voter n3"}
	if !slices.Equal(r.calls, want) {
		t.Errorf("changes %q, want %q", r.calls, want)
	}
	if kicked != 1 {
		t.Errorf("heartbeat rounds asked %d, want 1", kicked)
	}

	// A member that does not catch up stays a stand-by: no voter is added behind it.
	r = &recordingRaft{caughtUp: map[string]bool{"n3": true}}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := Apply(ctx, r, members(3, Voter, Spare, Spare), plan, slog.New(slog.DiscardHandler), func() { kicked++ })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "making n2 a voter") {
		t.Errorf("Apply with n2 behind: %v, want n2's catch-up deadline", err)
	}
	if want := []string{"nonvoter n2", "caught up? n2"}; !slices.Equal(r.calls, want) {
		t.Errorf("changes with n2 behind %q, want %q", r.calls, want)
	}

	// One still behind when CatchUpTimeout passes is no failure (a join completes with it a
	// stand-by; a later rebalance promotes it), and the next one is promoted meanwhile.
	r = &recordingRaft{caughtUp: map[string]bool{"n3": true}, slow: true}
	if err := Apply(context.Background(), r, members(3, Voter, Spare, Spare), plan, slog.New(slog.DiscardHandler), func() {}); err != nil {
		t.Errorf("Apply with n2 slow to catch up: %v", err)
	}
	if want := []string{"nonvoter n2", "caught up? n2", "nonvoter n3", "caught up? n3", "voter n3"}; !slices.Equal(r.calls, want) {
		t.Errorf("changes with n2 slow to catch up %q, want %q", r.calls, want)
	}
}

// When a voter goes offline, the leader removes it before promoting a stand-by in its
// place: promoting first made four voters, one dead, whose quorum of three needed the
// newly caught-up voter too; a second failure in that window lost the quorum.
func TestApplyRemovesAnOfflineVoterFirst(t *testing.T) {
	ms := members(5, Voter, Voter, Voter, Standby, Standby)
	ms[1].Online = false
	plan := Plan(ms, 3, 2, "n1")
	if plan["n2"] != Spare || plan["n4"] != Voter {
		t.Fatalf("plan %v: want n2 spare, n4 voter", plan)
	}
	r := &recordingRaft{caughtUp: map[string]bool{"n4": true}}
	if err := Apply(context.Background(), r, ms, plan, slog.New(slog.DiscardHandler), func() {}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"remove n2", "caught up? n4", "voter n4"}; !slices.Equal(r.calls, want) {
		t.Errorf("changes %q, want %q", r.calls, want)
	}
}
