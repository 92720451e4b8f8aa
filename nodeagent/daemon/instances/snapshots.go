package instances

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"orch/modules/lxc"
	"orch/modules/storage"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// LXD's instance snapshots (`lxc snapshot c1 [snap0]`, `lxc restore c1 snap0`, `lxc delete
// c1/snap0`, `lxc info c1`): the owner snapshots the instance's root disk through its
// pool's driver (btrfs and dir pools here) and records the snapshot; a restore stops a
// running instance, puts the snapshot's files back and starts it again. A snapshot holds
// the files only (no stateful snapshots); its config is the instance's. Deleting the
// instance deletes its snapshots; an instance with snapshots does not move.

// snapshotRow is one recorded snapshot.
type snapshotRow struct {
	name      string
	createdAt time.Time
}

// snapshotsOf reads an instance's snapshots, oldest first (none on a database from before
// the table).
func (s *Service) snapshotsOf(ctx context.Context, instance string) ([]snapshotRow, error) {
	rows, err := s.db.Query(ctx, `SELECT sn.name, sn.created_at FROM instances_snapshots sn JOIN instances i ON i.id = sn.instance_id
		WHERE i.name = ? ORDER BY sn.created_at, sn.id`, instance)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, err
	}
	out := make([]snapshotRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, snapshotRow{name: db.Str(r[0]), createdAt: time.UnixMilli(db.I64(r[1]))})
	}
	return out, nil
}

// snapshotViews are an instance's snapshots in LXD's shape.
func (s *Service) snapshotViews(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	row, err := s.instance(ctx, name)
	if err != nil {
		return nil, err
	}
	snaps, err := s.snapshotsOf(ctx, name)
	if err != nil {
		return nil, err
	}
	views, err := s.withLXDFields(ctx, []api.Instance{viewOf(row, nil, nil)})
	if err != nil {
		return nil, err
	}
	v := views[0]
	out := make([]api.InstanceSnapshot, 0, len(snaps))
	for _, sn := range snaps {
		out = append(out, api.InstanceSnapshot{Name: sn.name, CreatedAt: sn.createdAt, LastUsedAt: sn.createdAt,
			Architecture: v.Architecture, Profiles: v.Profiles, Config: userConfig(v.Config), Devices: v.Devices,
			ExpandedConfig: v.ExpandedConfig, ExpandedDevices: v.ExpandedDevices})
	}
	return out, nil
}

// pathSnapshots are the snapshots of the {name} instance.
func (s *Service) pathSnapshots(r *http.Request) (string, []api.InstanceSnapshot, error) {
	name, err := rest.PathName(r)
	if err != nil {
		return "", nil, err
	}
	out, err := s.snapshotViews(r.Context(), name)
	return name, out, err
}

// getSnapshots is GET /1.0/instances/{name}/snapshots.
func (s *Service) getSnapshots(w http.ResponseWriter, r *http.Request) error {
	name, out, err := s.pathSnapshots(r)
	if err != nil {
		return err
	}
	return rest.WriteList(w, r, "/1.0/instances/"+url.PathEscape(name)+"/snapshots", out, func(v api.InstanceSnapshot) string { return v.Name })
}

// getSnapshot is GET /1.0/instances/{name}/snapshots/{snap}.
func (s *Service) getSnapshot(w http.ResponseWriter, r *http.Request) error {
	name, out, err := s.pathSnapshots(r)
	if err != nil {
		return err
	}
	for _, v := range out {
		if v.Name == r.PathValue("snap") {
			return rest.WriteOK(w, v, "")
		}
	}
	return rest.NotFound("instance %q has no snapshot %q", name, r.PathValue("snap"))
}

// postSnapshot is POST /1.0/instances/{name}/snapshots on the owner, an operation.
func (s *Service) postSnapshot(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	var req api.InstanceSnapshotsPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if req.Stateful {
		return rest.BadRequest("stateful: stateful snapshots are not supported (the files only)")
	}
	snaps, err := s.snapshotsOf(r.Context(), row.name)
	if err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = nextSnapshotName(snaps)
	}
	if err := storage.CheckName("snapshot", req.Name); err != nil {
		return rest.BadRequest("%v", err)
	}
	for _, sn := range snaps {
		if sn.name == req.Name {
			return rest.Conflict("instance %q already has a snapshot %q", row.name, req.Name)
		}
	}
	snapper, err := s.snapshotter(r.Context(), row.name)
	if err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Snapshotting instance", Resources: resources(row.name),
		Run: func(ctx context.Context, _ rest.Op) error { return s.snapshot(ctx, snapper, row.name, req.Name) }})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// nextSnapshotName is LXD's automatic name: snapN with N one more than the highest.
func nextSnapshotName(snaps []snapshotRow) string {
	n := 0
	for _, sn := range snaps {
		var k int
		if _, err := fmt.Sscanf(sn.name, "snap%d", &k); err == nil && k >= n {
			n = k + 1
		}
	}
	return fmt.Sprintf("snap%d", n)
}

// snapshot takes the snapshot and records it; an unrecorded snapshot is removed again.
func (s *Service) snapshot(ctx context.Context, snapper storage.Snapshotter, name, snap string) error {
	if err := snapper.Snapshot(ctx, name, snap); err != nil {
		return fmt.Errorf("snapshot %s of %s: %w", snap, name, err)
	}
	_, err := s.db.Exec(ctx, db.Stmt(`INSERT INTO instances_snapshots(instance_id, name, created_at)
		VALUES((SELECT id FROM instances WHERE name = ?), ?, ?)`, name, snap, time.Now().UnixMilli()))
	if err != nil {
		_ = snapper.DeleteSnapshot(context.WithoutCancel(ctx), name, snap)
		return err
	}
	s.events.Lifecycle("instance-snapshot-created", source(name)+"/snapshots/"+snap, nil)
	return nil
}

// deleteSnapshot is DELETE /1.0/instances/{name}/snapshots/{snap} on the owner.
func (s *Service) deleteSnapshot(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	snap := r.PathValue("snap")
	if err := s.haveSnapshot(r.Context(), row.name, snap); err != nil {
		return err
	}
	snapper, err := s.snapshotter(r.Context(), row.name)
	if err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Deleting snapshot", Resources: resources(row.name),
		Run: func(ctx context.Context, _ rest.Op) error {
			if err := snapper.DeleteSnapshot(ctx, row.name, snap); err != nil {
				return err
			}
			_, err := s.db.Exec(ctx, db.Stmt(`DELETE FROM instances_snapshots WHERE name = ?
				AND instance_id = (SELECT id FROM instances WHERE name = ?)`, snap, row.name))
			if err == nil {
				s.events.Lifecycle("instance-snapshot-deleted", source(row.name)+"/snapshots/"+snap, nil)
			}
			return err
		}})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// haveSnapshot is a 404 naming the snapshot when the instance has none of that name.
func (s *Service) haveSnapshot(ctx context.Context, name, snap string) error {
	snaps, err := s.snapshotsOf(ctx, name)
	if err != nil {
		return err
	}
	for _, sn := range snaps {
		if sn.name == snap {
			return nil
		}
	}
	return rest.NotFound("instance %q has no snapshot %q", name, snap)
}

// restoreSnapshot puts snapshot snap's files back into this member's container: a running
// one is stopped first and started again after.
func (s *Service) restoreSnapshot(ctx context.Context, row instanceRow, snap string) error {
	snapper, err := s.snapshotter(ctx, row.name)
	if err != nil {
		return err
	}
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	info, err := m.Info(ctx, row.name)
	if err != nil {
		return driverError(err)
	}
	running := info.State != lxc.StateStopped
	if running {
		if err := m.Stop(ctx, row.name, false); err != nil {
			return driverError(err)
		}
	}
	if err := snapper.Restore(ctx, row.name, snap); err != nil {
		return fmt.Errorf("restoring snapshot %s of %s: %w", snap, row.name, err)
	}
	if running {
		if err := m.Start(ctx, row.name); err != nil {
			return driverError(err)
		}
	}
	s.events.Lifecycle("instance-restored", source(row.name), map[string]any{"snapshot": snap})
	return nil
}

// snapshotter is the snapshotting driver of the pool holding the instance's root disk on
// this member.
func (s *Service) snapshotter(ctx context.Context, name string) (storage.Snapshotter, error) {
	drv, _, pool, err := s.rootDriver(ctx, name)
	if err != nil {
		return nil, err
	}
	snapper, err := storage.SnapshotsOf(drv)
	if err != nil {
		return nil, rest.BadRequest("storage pool %s of %s: %v", pool, name, err)
	}
	return snapper, nil
}

// rootDriver is the driver and pool of the pool holding the instance's root disk on this
// member, with the pool's name.
func (s *Service) rootDriver(ctx context.Context, name string) (storage.Driver, storage.Pool, string, error) {
	pool, _, found, err := s.rootPool(ctx, name)
	if err != nil {
		return nil, storage.Pool{}, "", err
	}
	if !found {
		return nil, storage.Pool{}, "", rest.NotFound("instance %q has no root disk on member %s", name, s.members.Self())
	}
	e, ok, err := s.entities.Pool(ctx, pool)
	if err != nil {
		return nil, storage.Pool{}, "", err
	}
	if !ok {
		return nil, storage.Pool{}, "", rest.NotFound("storage pool %q of %s does not exist", pool, name)
	}
	drv, sp, err := s.entities.PoolDriver(e)
	return drv, sp, pool, err
}
