package daemon

import (
	"crypto/sha256"
	"encoding/hex"
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
	m, err := lxc.New(lxc.Config{LXCPath: filepath.Join(d.cfg.Dir, "containers"), CgroupPrefix: cgroupPrefix(d.memberName(), d.cfg.Dir),
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

// imageStore is the member's image store (the images domain's Deps.Open).
func (d *Daemon) imageStore() (*image.Store, error) {
	_, s, err := d.drivers()
	return s, err
}

// cgroupPrefix names this agent's container cgroups: the member's name and a short hash of
// its directory, so that two agents on one machine (test clusters running side by side,
// each with a member node2 launching c1) never make the same cgroup.
func cgroupPrefix(member, dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return member + "-" + hex.EncodeToString(sum[:3])
}
