package daemon

import (
	"context"
	"fmt"

	"orch/nodeagent/config"
	"orch/nodeagent/daemon/roles"
	"orch/nodeagent/store"
)

// Raft roles of a member (roles.Voter, ...), the planner's view of a member, and the
// daemon's names for the roles package's functions.
const (
	roleVoter   = roles.Voter
	roleStandby = roles.Standby
	roleSpare   = roles.Spare
)

type roleCandidate = roles.Candidate

func planRoles(ms []roleCandidate, maxVoters, maxStandby int, leader string) map[string]string {
	return roles.Plan(ms, maxVoters, maxStandby, leader)
}

func currentRoles(servers []store.Server) map[string]string { return roles.Current(servers) }

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

// applyRoles applies plan (roles.Apply), asking for a heartbeat round after a change so
// that every member records the new database members (list-database) at once.
func (d *Daemon) applyRoles(ctx context.Context, st *store.Store, ms []roleCandidate, plan map[string]string) error {
	return roles.Apply(ctx, st, ms, plan, d.log, d.health.kickRound)
}
