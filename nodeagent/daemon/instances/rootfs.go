package instances

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"orch/modules/storage"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// An instance's root filesystem is a volume of type "container" on the pool of its root
// disk, made by the pool's driver on the owning member as LXD does: a btrfs subvolume, a
// thin LV (ext4, mounted), a ZFS dataset or a directory, at
// DIR/storage-pools/POOL/containers/NAME, with the unpacked image in its rootfs/ folder.
// Its storage_volumes row (type container, named after the instance) is what refuses the
// deletion of a pool still holding instances; `storage volume list` shows custom volumes
// only (GET .../volumes?type=container or all for the rest).

// makeRootfs makes the container volume of instance name on pool and returns its rootfs
// folder. On any failure nothing is left: neither the volume nor its row.
func (s *Service) makeRootfs(ctx context.Context, pool, name string) (rootfs string, err error) {
	me := s.members.Self()
	e, ok, err := s.entities.Pool(ctx, pool)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", rest.NotFound("storage pool %q of the root disk does not exist", pool)
	}
	if !e.CreatedOn(me) {
		return "", rest.Conflict("storage pool %q of the root disk is not created on member %s", pool, me)
	}
	drv, sp, err := s.entities.PoolDriver(e)
	if err != nil {
		return "", fmt.Errorf("storage pool %s on member %s: %w", pool, me, err)
	}
	_, err = s.db.Exec(ctx, db.Stmt(`INSERT INTO storage_volumes(pool_id, member_id, name, type, state)
		VALUES(?, (SELECT id FROM members WHERE name = ?), ?, 'container', 'Creating')`, e.ID(), me, name))
	if rest.IsUnique(err) {
		return "", rest.Conflict("storage pool %q already holds a container volume %q on member %s", pool, name, me)
	}
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			s.forgetRootfs(context.WithoutCancel(ctx), e.ID(), name)
		}
	}()
	if err := drv.CreateTypedVolume(ctx, storage.VolumeContainer, name, nil); err != nil {
		return "", fmt.Errorf("root disk of %s on pool %s (member %s): %w", name, pool, me, err)
	}
	defer func() {
		if err != nil {
			if derr := drv.DeleteTypedVolume(context.WithoutCancel(ctx), storage.VolumeContainer, name); derr != nil {
				s.log.Warn("removing a failed launch's root disk", "instance", name, "pool", pool, "err", derr)
			}
		}
	}()
	rootfs = filepath.Join(sp.VolumePathOf(storage.VolumeContainer, name), "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return "", fmt.Errorf("root disk of %s on member %s: %w", name, me, err)
	}
	if _, err := s.db.Exec(ctx, db.Stmt(`UPDATE storage_volumes SET state = 'Created'
		WHERE pool_id = ? AND type = 'container' AND name = ? AND member_id = (SELECT id FROM members WHERE name = ?)`, e.ID(), name, me)); err != nil {
		return "", err
	}
	return rootfs, nil
}

// dropRootfs deletes instance name's container volume on this member through its pool's
// driver, then its row. An instance without one is left alone.
func (s *Service) dropRootfs(ctx context.Context, name string) error {
	me := s.members.Self()
	pool, poolID, found, err := s.rootPool(ctx, name)
	if err != nil || !found {
		return err
	}
	e, ok, err := s.entities.Pool(ctx, pool)
	if err != nil {
		return err
	}
	if ok {
		drv, _, err := s.entities.PoolDriver(e)
		if err != nil {
			return fmt.Errorf("storage pool %s on member %s: %w", pool, me, err)
		}
		if err := drv.DeleteTypedVolume(ctx, storage.VolumeContainer, name); err != nil {
			return fmt.Errorf("root disk of %s on pool %s (member %s): %w", name, pool, me, err)
		}
	}
	s.log.Info("root disk deleted", "instance", name, "pool", pool)
	return s.forgetRootfs(ctx, poolID, name)
}

// rootPool is the pool (name and id) holding instance name's container volume on this
// member; found is false when this member holds none.
func (s *Service) rootPool(ctx context.Context, name string) (pool string, id int64, found bool, err error) {
	rows, err := s.db.Query(ctx, `SELECT p.name, p.id FROM storage_volumes v JOIN storage_pools p ON p.id = v.pool_id
		WHERE v.type = 'container' AND v.name = ? AND v.member_id = (SELECT id FROM members WHERE name = ?)`, name, s.members.Self())
	if err != nil || len(rows) == 0 {
		return "", 0, false, err
	}
	return db.Str(rows[0][0]), db.I64(rows[0][1]), true, nil
}

// forgetRootfs drops the row of instance name's container volume on this member.
func (s *Service) forgetRootfs(ctx context.Context, poolID int64, name string) error {
	_, err := s.db.Exec(ctx, db.Stmt(`DELETE FROM storage_volumes WHERE pool_id = ? AND type = 'container' AND name = ?
		AND member_id = (SELECT id FROM members WHERE name = ?)`, poolID, name, s.members.Self()))
	if err != nil {
		s.log.Warn("dropping a root disk's row", "instance", name, "err", err)
	}
	return err
}
