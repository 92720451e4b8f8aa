package daemon

import (
	"context"
	"fmt"
	"sort"

	"orch/nodeagent/config"
	"orch/nodeagent/store"
)

// Raft roles of a member.
const (
	roleVoter   = "voter"
	roleStandby = "standby"
	roleSpare   = "spare"
)

// roleCandidate is what the role planner knows of one member.
type roleCandidate struct {
	Name    string
	Address string
	Online  bool
	Current string // roleVoter, roleStandby or roleSpare
}

// planRoles decides every member's raft role, as LXD does: with fewer than three members
// only the current voters hold the database; from three on, up to maxVoters voters, then up
// to maxStandby stand-bys, the rest spare. Online members are preferred; a member keeps its
// role when possible, so that roles move only when they must. Members are in join order.
func planRoles(ms []roleCandidate, maxVoters, maxStandby int, leader string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.Name] = roleSpare
		if m.Current == roleVoter && len(ms) < 3 {
			out[m.Name] = roleVoter
		}
	}
	if len(ms) < 3 {
		return out
	}
	pick := func(role string, limit int, tiers ...func(roleCandidate) bool) {
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
				if out[m.Name] == roleSpare && tier(m) {
					out[m.Name] = role
					n++
				}
			}
		}
	}
	isLeader := func(m roleCandidate) bool { return m.Name == leader }
	onlineWas := func(role string) func(roleCandidate) bool {
		return func(m roleCandidate) bool { return m.Online && m.Current == role }
	}
	online := func(m roleCandidate) bool { return m.Online }
	was := func(role string) func(roleCandidate) bool {
		return func(m roleCandidate) bool { return m.Current == role }
	}
	pick(roleVoter, maxVoters, isLeader, onlineWas(roleVoter), onlineWas(roleStandby), online, was(roleVoter))
	pick(roleStandby, maxStandby, onlineWas(roleStandby), online, was(roleStandby))
	return out
}

// currentRoles maps raft servers to roles; members absent from raft are spare.
func currentRoles(servers []store.Server) map[string]string {
	out := map[string]string{}
	for _, s := range servers {
		if s.Suffrage == "voter" {
			out[s.ID] = roleVoter
		} else {
			out[s.ID] = roleStandby
		}
	}
	return out
}

// rebalance brings the raft configuration in line with planRoles. Leader only.
func (d *Daemon) rebalance(ctx context.Context) error {
	return d.rebalanceWithout(ctx, "", false)
}

// rebalanceWithout plans roles as if member leaving were offline (a voter handing its role
// over at shutdown) or, with remove, gone: then it ends up out of the raft configuration
// once its replacement holds the role.
func (d *Daemon) rebalanceWithout(ctx context.Context, leaving string, remove bool) error {
	d.roleMu.Lock()
	defer d.roleMu.Unlock()
	return d.rebalanceLocked(ctx, leaving, remove)
}

// rebalanceLocked is rebalanceWithout with roleMu held: a member removal holds it from its
// role hand-over until its rows are gone, so that a heartbeat round's rebalance cannot
// give the member a raft role again from its row in between.
func (d *Daemon) rebalanceLocked(ctx context.Context, leaving string, remove bool) error {
	st := d.store()
	if st == nil || !st.IsLeader() {
		return nil
	}
	ms, cfg, err := d.roleInputs(ctx)
	if err != nil {
		return err
	}
	var others []roleCandidate
	var gone *roleCandidate
	for i := range ms {
		if ms[i].Name == leaving {
			ms[i].Online = false
			if remove {
				gone = &ms[i]
				continue
			}
		}
		others = append(others, ms[i])
	}
	plan := planRoles(others, config.Int(cfg, "cluster.max_voters"), config.Int(cfg, "cluster.max_standby"), d.memberName())
	if gone != nil {
		plan[gone.Name] = roleSpare
		others = append(others, *gone)
	}
	if err := d.applyRoles(ctx, st, others, plan); err != nil {
		return err
	}
	return d.removeOrphans(ctx, st, ms)
}

// removeOrphans takes out of the raft configuration the servers that have no member row
// (left behind by a removal that raced a rebalance in older versions): nothing else would
// ever remove them, and a voter without a member counts for the quorum. The rows are read
// linearizably, so that a replica still applying a join's entry does not look orphaned.
func (d *Daemon) removeOrphans(ctx context.Context, st *store.Store, local []roleCandidate) error {
	servers, err := st.Servers()
	if err != nil {
		return err
	}
	known := map[string]bool{d.memberName(): true}
	for _, m := range local {
		known[m.Name] = true
	}
	var suspects []string
	for _, s := range servers {
		if !known[s.ID] {
			suspects = append(suspects, s.ID)
		}
	}
	if len(suspects) == 0 {
		return nil
	}
	members, err := d.members(ctx)
	if err != nil {
		return err
	}
	for _, m := range members {
		known[m.name] = true
	}
	for _, id := range suspects {
		if known[id] {
			continue
		}
		if err := st.RemoveServer(ctx, id); err != nil {
			return fmt.Errorf("removing raft server %q, which has no member row: %w", id, err)
		}
		d.log.Warn("removed a raft server that had no member row", "server", id)
		d.health.kickRound()
	}
	return nil
}

func (d *Daemon) roleInputs(ctx context.Context) ([]roleCandidate, map[string]string, error) {
	servers, err := d.store().Servers()
	if err != nil {
		return nil, nil, err
	}
	cur := currentRoles(servers)
	members, err := d.membersLocal(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := d.globalConfigLocal(ctx)
	if err != nil {
		return nil, nil, err
	}
	threshold, now := offlineThreshold(cfg), d.clusterNow()
	var ms []roleCandidate
	for _, m := range members {
		role := cur[m.name]
		if role == "" {
			role = roleSpare
		}
		ms = append(ms, roleCandidate{Name: m.name, Address: m.address, Online: m.online(now, threshold), Current: role})
	}
	return ms, cfg, nil
}

// applyRoles promotes first and demotes last, so the database never has fewer voters than
// needed during the change. After a change it asks for a heartbeat round, so that every
// member records the new database members (list-database) at once.
func (d *Daemon) applyRoles(ctx context.Context, st *store.Store, ms []roleCandidate, plan map[string]string) error {
	sort.SliceStable(ms, func(i, j int) bool { return rank(plan[ms[i].Name]) > rank(plan[ms[j].Name]) })
	changed := false
	defer func() {
		if changed {
			d.health.kickRound()
		}
	}()
	for _, m := range ms {
		want := plan[m.Name]
		if want == m.Current {
			continue
		}
		var err error
		switch want {
		case roleVoter:
			err = st.AddVoter(ctx, m.Name, m.Address)
		case roleStandby:
			if m.Current == roleVoter {
				err = st.DemoteVoter(ctx, m.Name)
			} else {
				err = st.AddNonvoter(ctx, m.Name, m.Address)
			}
		case roleSpare:
			err = st.RemoveServer(ctx, m.Name)
		}
		if err != nil {
			return fmt.Errorf("making %s a %s: %w", m.Name, want, err)
		}
		changed = true
		d.log.Info("member role changed", "member", m.Name, "from", m.Current, "to", want)
	}
	return nil
}

func rank(role string) int {
	switch role {
	case roleVoter:
		return 2
	case roleStandby:
		return 1
	}
	return 0
}
