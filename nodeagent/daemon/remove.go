package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"orch/nodeagent/daemon/entity"
	"orch/nodeagent/daemon/instances"
)

// deleteMember removes a member (leader). A clean removal hands the member's raft role over,
// takes it out of the raft configuration, deletes its rows and tells it to reset itself;
// --force does the same without contacting it, for a member that is gone.
func (d *Daemon) deleteMember(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	force := r.URL.Query().Get("force") == "1" || r.URL.Query().Get("force") == "true"
	ctx := r.Context()
	members, err := d.members(ctx)
	if err != nil {
		return err
	}
	target, ok := findMember(members, name)
	if !ok {
		return notFound("no member named %q", name)
	}
	if len(members) == 1 {
		return conflict("%q is the last member of the cluster and cannot be removed", name)
	}
	if !force {
		if err := d.insts.RefuseIfOwnsInstances(ctx, name); err != nil {
			return err
		}
		if err := d.ents.RefuseIfHoldsVolumes(ctx, name); err != nil {
			return err
		}
		if err := d.requireOnline(ctx, name); err != nil {
			return fmt.Errorf("%w: remove it with --force", err)
		}
	}
	if name == d.memberName() {
		// The leader cannot remove itself: hand leadership over, then let the new leader do it.
		if err := d.store().TransferLeadership(ctx); err != nil {
			return fmt.Errorf("handing leadership over before removing %q: %w", name, err)
		}
		if err := d.waitForOtherLeader(ctx); err != nil {
			return err
		}
		return d.srv.ProxyToLeader(w, r)
	}
	if err := d.removeFromDatabase(ctx, name); err != nil {
		return err
	}
	if !force {
		if err := d.srv.Post(ctx, target.address, "/internal/cluster/removed", nameRequest{Name: name}, nil, 1); err != nil {
			d.log.Warn("removed member could not be told to reset", "member", name, "err", err)
		}
	}
	d.log.Info("member removed", "member", name, "force", force)
	go d.imgs.ReplicateAll(context.WithoutCancel(ctx)) // the removed member's image copies are gone
	return writeOK(w, nil, "")
}

func findMember(ms []memberRow, name string) (memberRow, bool) {
	for _, m := range ms {
		if m.name == name {
			return m, true
		}
	}
	return memberRow{}, false
}

func (d *Daemon) waitForOtherLeader(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if id, _ := d.store().Leader(); id != "" && id != d.memberName() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return unavailable("no new leader after handing leadership over")
}

// removeFromDatabase hands the member's raft role over, takes it out of the raft
// configuration and deletes its rows, with roleMu held throughout: a heartbeat round's
// rebalance in between would see its row and could give it a role again, leaving a raft
// server without a member row once the rows are gone.
func (d *Daemon) removeFromDatabase(ctx context.Context, name string) error {
	d.roleMu.Lock()
	defer d.roleMu.Unlock()
	if err := d.rebalanceLocked(ctx, name, true); err != nil {
		return fmt.Errorf("taking %q out of the database: %w", name, err)
	}
	return d.forgetMember(ctx, name)
}

// forgetMember takes a member out of the raft configuration (if still there) and deletes
// its rows and only its rows.
func (d *Daemon) forgetMember(ctx context.Context, name string) error {
	st := d.store()
	if servers, err := st.Servers(); err == nil {
		if _, in := currentRoles(servers)[name]; in {
			if err := st.RemoveServer(ctx, name); err != nil {
				return fmt.Errorf("removing %q from the raft configuration: %w", name, err)
			}
		}
	}
	id := `(SELECT id FROM members WHERE name = ?)`
	stmts := append(append(instances.ForgetMemberStatements(name), entity.ForgetMemberStatements(name)...),
		storeStmt(`DELETE FROM storage_pools_config WHERE member_id = `+id, name),
		storeStmt(`DELETE FROM storage_pools_members WHERE member_id = `+id, name),
		storeStmt(`DELETE FROM networks_config WHERE member_id = `+id, name),
		storeStmt(`DELETE FROM networks_members WHERE member_id = `+id, name),
		storeStmt(`DELETE FROM tokens WHERE name = ?`, name),
		storeStmt(`DELETE FROM members WHERE name = ?`, name),
	)
	_, err := d.exec(ctx, stmts...)
	return err
}

// postRemoved is sent to a member that was cleanly removed: it drops its cluster state and
// goes back to uninitialised, so it can join again.
func (d *Daemon) postRemoved(w http.ResponseWriter, r *http.Request) error {
	var req nameRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Name != d.memberName() {
		return badRequest("this member is %q, not %q", d.memberName(), req.Name)
	}
	if err := writeOK(w, nil, ""); err != nil {
		return err
	}
	_ = http.NewResponseController(w).Flush()
	go func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.log.Info("this member was removed from the cluster; resetting")
		d.undoMember()
	}()
	return nil
}

// handover runs at clean shutdown: a leader hands leadership over, and a voter asks the
// leader to give its role to another member, so the database keeps its voters.
func (d *Daemon) handover(ctx context.Context) {
	st := d.store()
	if st == nil {
		return
	}
	servers, err := st.Servers()
	if err != nil || currentRoles(servers)[d.memberName()] != roleVoter || len(servers) < 2 {
		return
	}
	if st.IsLeader() {
		if err := st.TransferLeadership(ctx); err != nil {
			d.log.Warn("handing leadership over failed", "err", err)
			return
		}
		_ = d.waitForOtherLeader(ctx)
	}
	if err := d.srv.ToLeader(ctx, "/internal/cluster/handover", nameRequest{Name: d.memberName()}, nil); err != nil && !errors.Is(err, context.Canceled) {
		d.log.Warn("handing the database role over failed", "err", err)
	}
}

// postHandover (leader) gives a leaving voter's role to another member when one is online.
func (d *Daemon) postHandover(w http.ResponseWriter, r *http.Request) error {
	var req nameRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := d.rebalanceWithout(r.Context(), req.Name, false); err != nil {
		return err
	}
	return writeOK(w, nil, "")
}
