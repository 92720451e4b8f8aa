package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"orch/modules/image"
	"orch/modules/lxc"
)

// nodeDrivers are this member's container manager and image store, made on first use (the
// member's name, which names its cgroups, is known only once it is initialised).
type nodeDrivers struct {
	mu     sync.Mutex
	lxc    *lxc.Manager
	images *image.Store
	// fetchMu serialises image fetches on this member, so that concurrent launches of one
	// image download it once.
	fetchMu sync.Mutex
}

// drivers returns the member's LXC manager and image store.
func (d *Daemon) drivers() (*lxc.Manager, *image.Store, error) {
	n := &d.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lxc != nil {
		return n.lxc, n.images, nil
	}
	if d.memberName() == "" {
		return nil, nil, ErrNotInitialised
	}
	m, err := lxc.New(lxc.Config{LXCPath: filepath.Join(d.cfg.Dir, "containers"), CgroupPrefix: d.memberName(),
		Logger: d.log.With("component", "lxc")})
	if err != nil {
		return nil, nil, err
	}
	s, err := image.Open(filepath.Join(d.cfg.Dir, "images"), d.log.With("component", "images"))
	if err != nil {
		return nil, nil, err
	}
	n.lxc, n.images = m, s
	return m, s, nil
}

// rootfsDir is where an instance's root filesystem lives on this member: in the pool's
// source directory for a "dir" pool with a source, else under the agent directory
// (DIR/storage-pools/POOL/containers/NAME), which is what the dir driver does by default.
func (d *Daemon) rootfsDir(ctx context.Context, pool, name string) (string, error) {
	base := filepath.Join(d.cfg.Dir, "storage-pools", pool)
	rows, err := d.query(ctx, `SELECT p.driver, c.value FROM storage_pools p
		LEFT JOIN storage_pools_config c ON c.pool_id = p.id AND c.key = 'source'
		  AND c.member_id IN (0, (SELECT id FROM members WHERE name = ?))
		WHERE p.name = ? ORDER BY c.member_id DESC LIMIT 1`, d.memberName(), pool)
	if err != nil {
		return "", err
	}
	if len(rows) == 1 && str(rows[0][0]) == "dir" && str(rows[0][1]) != "" {
		base = str(rows[0][1])
	}
	dir := filepath.Join(base, "containers", name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return "", fmt.Errorf("pool %s: %w", pool, err)
	}
	return dir, nil
}
