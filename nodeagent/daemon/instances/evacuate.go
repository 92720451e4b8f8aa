package instances

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// LXD's cluster evacuation (`lxc cluster evacuate NAME`, `lxc cluster restore NAME`): an
// evacuated member takes no new instance (placement skips it, a --target at it is refused)
// and its instances are stopped cleanly, each running one marked so that the restore
// starts it again; its agent starts none at boot. Storage here is local to each member, so
// LXD's default for it applies: instances are stopped, not moved. The member shows
// EVACUATED in `cluster list` while it is.

// keyEvacuated marks an instance that ran when its member was evacuated.
const keyEvacuated = "volatile.evacuate.running"

// postMemberState is POST /1.0/cluster/members/{name}/state, an operation.
func (s *Service) postMemberState(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	var req api.ClusterMemberStatePost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if req.Action != "evacuate" && req.Action != "restore" {
		return rest.BadRequest("action %q: evacuate or restore", req.Action)
	}
	if req.Mode != "" && req.Mode != "auto" && req.Mode != "stop" {
		return rest.BadRequest("mode %q: instances here are on local storage and can only be stopped (auto or stop)", req.Mode)
	}
	addr, err := s.memberAddress(r.Context(), name)
	if err != nil {
		return err
	}
	if err := s.members.RequireOnline(r.Context(), name); err != nil {
		return err
	}
	desc := map[string]string{"evacuate": "Evacuating cluster member", "restore": "Restoring cluster member"}[req.Action]
	op, err := s.ops.Start(r, rest.Task{Description: desc, Resources: map[string][]string{"cluster_members": {"/1.0/cluster/members/" + name}},
		Run: func(ctx context.Context, _ rest.Op) error { return s.changeMemberState(ctx, name, addr, req.Action) }})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// changeMemberState records the member's state first when evacuating (no launch lands on
// it meanwhile) and last when restoring (its instances run before it takes new ones), and
// has the member stop or start its instances.
func (s *Service) changeMemberState(ctx context.Context, name, addr, action string) error {
	evacuate := action == "evacuate"
	if evacuate {
		if err := s.setEvacuated(ctx, name, true); err != nil {
			return err
		}
	}
	var err error
	if name == s.members.Self() {
		err = s.evacuateHere(ctx, evacuate)
	} else {
		err = s.postTo(ctx, addr, "/internal/instances/evacuation", api.ClusterMemberStatePost{Action: action})
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, name, err)
	}
	if !evacuate {
		return s.setEvacuated(ctx, name, false)
	}
	return nil
}

// setEvacuated records a member's evacuation.
func (s *Service) setEvacuated(ctx context.Context, name string, on bool) error {
	v := int64(0)
	if on {
		v = 1
	}
	_, err := s.db.Exec(ctx, store.Statement{SQL: `UPDATE members SET evacuated = ? WHERE name = ?`, Args: []any{v, name}, Expect: store.Int64(1)})
	if rest.IsConflict(err) {
		return rest.NotFound("no member named %q", name)
	}
	return err
}

// postEvacuation is the member's part: stop or start its instances.
func (s *Service) postEvacuation(w http.ResponseWriter, r *http.Request) error {
	var req api.ClusterMemberStatePost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if err := s.evacuateHere(r.Context(), req.Action == "evacuate"); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// evacuateHere stops this member's running instances, marking each (evacuate), or starts
// those marked and clears the mark (restore). The first failure is returned after the
// others were tried.
func (s *Service) evacuateHere(ctx context.Context, evacuate bool) error {
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	rows, err := s.instances(ctx, "")
	if err != nil {
		return err
	}
	var failed []string
	for _, row := range rows {
		if row.member != s.members.Self() || row.state != instCreated {
			continue
		}
		var err error
		if evacuate {
			err = s.evacuateOne(ctx, m, row)
		} else if row.config[keyEvacuated] == "true" {
			err = s.restoreOne(ctx, m, row)
		}
		if err != nil {
			s.log.Warn("cluster evacuation", "instance", row.name, "evacuate", evacuate, "err", err)
			failed = append(failed, row.name+": "+err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("instances not done: %s", strings.Join(failed, "; "))
	}
	return nil
}

// evacuateOne marks a running instance and stops it cleanly.
func (s *Service) evacuateOne(ctx context.Context, m *lxc.Manager, row instanceRow) error {
	info, err := m.Info(ctx, row.name)
	if err != nil || info.State != lxc.StateRunning {
		return err
	}
	if err := s.setVolatile(ctx, row.name, keyEvacuated, "true"); err != nil {
		return err
	}
	if err := m.Stop(ctx, row.name, false); err != nil {
		return driverError(err)
	}
	s.events.Lifecycle("instance-stopped", source(row.name), nil)
	return nil
}

// restoreOne starts an instance its member's evacuation stopped and clears the mark.
func (s *Service) restoreOne(ctx context.Context, m *lxc.Manager, row instanceRow) error {
	if err := s.changeState(ctx, m, row, api.InstanceStatePut{Action: "start"}); err != nil {
		return err
	}
	s.events.Lifecycle("instance-started", source(row.name), nil)
	return s.dropVolatile(ctx, row.name, keyEvacuated)
}

// memberAddress is a member's cluster address, or a 404 naming it.
func (s *Service) memberAddress(ctx context.Context, name string) (string, error) {
	rows, err := s.db.Query(ctx, `SELECT address FROM members WHERE name = ?`, name)
	if err != nil {
		return "", err
	}
	if len(rows) == 0 {
		return "", rest.NotFound("no member named %q", name)
	}
	return db.Str(rows[0][0]), nil
}

// evacuatedMembers names the members evacuated now (none on a database from before the
// column).
func (s *Service) evacuatedMembers(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.Query(ctx, `SELECT name FROM members WHERE evacuated = 1`)
	if err != nil {
		if strings.Contains(err.Error(), "no such column") {
			return nil, nil
		}
		return nil, err
	}
	out := map[string]bool{}
	for _, r := range rows {
		out[db.Str(r[0])] = true
	}
	return out, nil
}
