package entity

import (
	"context"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/store"
)

// Bringing this member's parts up: after bootstrap the preseed's Pending pools and
// networks are created (the bootstrap member is the whole cluster); after a join the
// member makes its part of every Created pool and network; after a restart it makes sure
// its parts exist (remounts btrfs loop files, recreates bridges, restarts dnsmasq).

// storageAfterInit runs once this member is a member (bootstrap or join). Failures are
// logged and recorded on the entity; they do not undo the membership.
func (s *Service) storageAfterInit(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, k := range []*entityKind{poolKind, networkKind} {
		if err := s.bringUpLocal(ctx, k); err != nil {
			s.log.Warn("bringing up local parts failed", "kind", k.noun, "err", err)
		}
	}
}

// storageAfterResume retries bringing the member's parts up until the database answers.
func (s *Service) storageAfterResume(ctx context.Context) {
	deadline := time.Now().Add(2 * time.Minute)
	for _, k := range []*entityKind{poolKind, networkKind} {
		for {
			err := s.bringUpLocal(ctx, k)
			if err == nil || time.Now().After(deadline) {
				if err != nil {
					s.log.Warn("bringing up local parts failed", "kind", k.noun, "err", err)
				}
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}

// bringUpLocal makes this member's part of each entity as its state asks.
func (s *Service) bringUpLocal(ctx context.Context, k *entityKind) error {
	es, err := s.listEntities(ctx, k)
	if err != nil {
		return err
	}
	me := s.members.Self()
	for _, e := range es {
		p := e.members[me]
		switch {
		case p == nil:
		case e.state != api.StatusCreated && len(e.order) == 1 && s.members.IsLeader():
			// A preseed's entity in a cluster of one: the final create, as a user would.
			if _, err := s.createEverywhere(ctx, k, e.name, e.typ, "", nil); err != nil {
				s.log.Warn("creating from the preseed failed", "kind", k.noun, "name", e.name, "err", err)
			}
		case e.state == api.StatusCreated:
			err := k.create(s, ctx, e.request(me))
			s.recordMemberPart(ctx, k, e, p, err)
		}
	}
	return nil
}

// recordMemberPart records this member's part as Created, or Errored with the reason.
func (s *Service) recordMemberPart(ctx context.Context, k *entityKind, e *entityRow, p *memberPart, err error) {
	state, msg := api.StatusCreated, ""
	if err != nil {
		state, msg = api.StatusErrored, err.Error()
		s.log.Warn("making the local part failed", "kind", k.noun, "name", e.name, "err", err)
	}
	if p.state == state && p.message == msg {
		return
	}
	_, _ = s.db.Exec(ctx, db.Stmt(`UPDATE `+k.members+` SET state = ?, message = ? WHERE `+k.idCol+` = ?
		AND member_id = (SELECT id FROM members WHERE name = ?)`, state, msg, e.id, s.members.Self()))
}

// forgetMemberStorage are the statements dropping a removed member's volumes.
func forgetMemberStorage(member string) []store.Statement {
	return []store.Statement{db.Stmt(`DELETE FROM storage_volumes WHERE member_id = (SELECT id FROM members WHERE name = ?)`, member)}
}
