// Package roles owns the raft role policy of the cluster, as LXD's: which members are
// voters, stand-by non-voters or spares (Plan), reading roles off the raft configuration
// (Current), and changing the configuration to follow a plan without ever having fewer
// voters than needed (Apply). When to rebalance and who the members are stay with the
// daemon's membership code.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package roles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"orch/nodeagent/store"
)

// Raft is the raft configuration changes Apply makes (store.Store).
type Raft interface {
	AddVoter(ctx context.Context, id, addr string) error
	DemoteVoter(ctx context.Context, id string) error
	AddNonvoter(ctx context.Context, id, addr string) error
	RemoveServer(ctx context.Context, id string) error
	// WaitCaughtUp waits until id holds the leader's log as it stands when called.
	WaitCaughtUp(ctx context.Context, id string) error
}

// errBehind is a member that did not catch up within CatchUpTimeout.
var errBehind = errors.New("not caught up")

// CatchUpTimeout bounds how long Apply waits for a member to hold the log before making
// it a voter; one that is still behind stays a stand-by until the next rebalance.
const CatchUpTimeout = 10 * time.Second

// Raft roles of a member.
const (
	Voter   = "voter"
	Standby = "standby"
	Spare   = "spare"
)

// Candidate is what the role planner knows of one member.
type Candidate struct {
	Name    string
	Address string
	Online  bool
	Current string // Voter, Standby or Spare
}

// Plan decides every member's raft role, as LXD does: with fewer than three members
// only the current voters hold the database; from three on, up to maxVoters voters, then up
// to maxStandby stand-bys, the rest spare. Online members are preferred; a member keeps its
// role when possible, so that roles move only when they must. Members are in join order.
func Plan(ms []Candidate, maxVoters, maxStandby int, leader string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = Spare
		if m.Current == Voter && len(ms) < 3 {
			out[m.Name] = Voter
		}
	}
	if len(ms) < 3 {
		return out
	}
	pick := func(role string, limit int, tiers ...func(Candidate) bool) {
		n := 0
		for _, v := range out {
			if v == role {
				n++
			}
		}
		for _, tier := range tiers {
			for _, m := range ms {
				if n >= limit {
					return
				}
				if out[m.Name] == Spare && tier(m) {
					out[m.Name] = role
					n++
				}
			}
		}
	}
	isLeader := func(m Candidate) bool { return m.Name == leader }
	onlineWas := func(role string) func(Candidate) bool {
		return func(m Candidate) bool { return m.Online && m.Current == role }
	}
	online := func(m Candidate) bool { return m.Online }
	was := func(role string) func(Candidate) bool {
		return func(m Candidate) bool { return m.Current == role }
	}
	pick(Voter, maxVoters, isLeader, onlineWas(Voter), onlineWas(Standby), online, was(Voter))
	pick(Standby, maxStandby, onlineWas(Standby), online, was(Standby))
	return out
}

// Current maps raft servers to roles; members absent from raft are spare.
func Current(servers []store.Server) map[string]string {
	out := map[string]string{}
	for _, s := range servers {
		if s.Suffrage == "voter" {
			out[s.ID] = Voter
		} else {
			out[s.ID] = Standby
		}
	}
	return out
}

// Apply makes the raft configuration follow plan: it promotes first and demotes last, so
// the database never has fewer voters than needed during the change — except an offline
// voter losing its role, which goes first: a dead voter still counts for the quorum, so
// promoting a stand-by beside it (four voters, one dead) needed every live voter, the new
// one included, to commit anything until the dead one was removed; without it the two
// live voters are a quorum of two, as they already were. After a change it calls changed
// (the daemon asks for a heartbeat round, so that every member records the new database
// members at once).
func Apply(ctx context.Context, st Raft, ms []Candidate, plan map[string]string, log *slog.Logger, changedFn func()) error {
	order := func(m Candidate) int {
		if m.Current == Voter && !m.Online && plan[m.Name] != Voter {
			return 3 // a dead voter out first
		}
		return rank(plan[m.Name])
	}
	sort.SliceStable(ms, func(i, j int) bool { return order(ms[i]) > order(ms[j]) })
	changed := false
	defer func() {
		if changed {
			changedFn()
		}
	}()
	for _, m := range ms {
		want := plan[m.Name]
		if want == m.Current {
			continue
		}
		var err error
		switch want {
		case Voter:
			var added bool
			added, err = promote(ctx, st, m)
			changed = changed || added
			if errors.Is(err, errBehind) {
				// Not a failure (a join completes with the member a stand-by): a later
				// rebalance promotes it once it has caught up.
				log.Warn("member still catching up: it stays a stand-by until a later rebalance", "member", m.Name, "err", err)
				continue
			}
		case Standby:
			if m.Current == Voter {
				err = st.DemoteVoter(ctx, m.Name)
			} else {
				err = st.AddNonvoter(ctx, m.Name, m.Address)
			}
		case Spare:
			err = st.RemoveServer(ctx, m.Name)
		}
		if err != nil {
			return fmt.Errorf("making %s a %s: %w", m.Name, want, err)
		}
		changed = true
		log.Info("member role changed", "member", m.Name, "from", m.Current, "to", want)
	}
	return nil
}

// promote makes m a voter once it holds the log: a spare is added as a non-voter first,
// then Apply waits for it to catch up. A voter added before it catches up counts for the
// quorum without being able to answer: two such (a spare promoted and a joiner added back
// to back when the third member joins) left the leader without a quorum for its lease, and
// it stepped down in the middle of the join ("leadership lost while committing log").
// Apply promotes members one after the other, so at most one voter is ever behind.
// It reports whether it added m as a non-voter (the configuration changed even when the
// promotion did not happen).
func promote(ctx context.Context, st Raft, m Candidate) (added bool, err error) {
	if m.Current == Spare {
		if err := st.AddNonvoter(ctx, m.Name, m.Address); err != nil {
			return false, err
		}
		added = true
	}
	wctx, cancel := context.WithTimeout(ctx, CatchUpTimeout)
	defer cancel()
	if err := st.WaitCaughtUp(wctx, m.Name); err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w within %s: %w", errBehind, CatchUpTimeout, err)
		}
		return added, fmt.Errorf("waiting for it to catch up (it stays a stand-by until it has): %w", err)
	}
	return added, st.AddVoter(ctx, m.Name, m.Address)
}

func rank(role string) int {
	switch role {
	case Voter:
		return 2
	case Standby:
		return 1
	}
	return 0
}
