package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// zfsDriver keeps a pool in ZFS: a zpool made on a loop file (no source) or on the block
// device in source, or the existing pool or dataset named by source. The zpool is named by
// zfs.pool_name (default: the pool's name). Volumes are datasets POOL/custom/VOL mounted at
// the volume's path.
type zfsDriver struct {
	pool    Pool
	run     runner
	dataset string // the pool's root dataset
	owns    bool   // the pool made its zpool (and destroys it)
}

func newZFS(p Pool, o Options, r runner) (*zfsDriver, error) {
	if err := needTools("zfs", "zfsutils-linux", "zfs", "zpool"); err != nil {
		return nil, err
	}
	if err := o.Kernel("zfs"); err != nil {
		return nil, fmt.Errorf("zfs driver: %w", err)
	}
	d := &zfsDriver{pool: p, run: r, dataset: p.Config["zfs.pool_name"], owns: true}
	if src := p.Config["source"]; src != "" && !strings.HasPrefix(src, "/") {
		d.dataset, d.owns = src, false
	}
	if d.dataset == "" {
		d.dataset = p.Name
	}
	return d, nil
}

func (z *zfsDriver) Create(ctx context.Context) error {
	if _, err := z.run.run(ctx, "zfs", "list", "-H", "-o", "name", z.dataset); err != nil {
		if !z.owns {
			return fmt.Errorf("zfs driver: pool %s: source dataset %q: %w", z.pool.Name, z.dataset, err)
		}
		if err := z.makePool(ctx); err != nil {
			return err
		}
	}
	if _, err := z.run.run(ctx, "zfs", "create", "-p", "-o", "mountpoint=none", z.dataset+"/custom"); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(z.pool.MountPoint(), "custom"), 0o711)
}

func (z *zfsDriver) makePool(ctx context.Context) error {
	dev := z.pool.Config["source"]
	if dev == "" {
		var err error
		if dev, err = makeLoopFile(z.pool); err != nil {
			return err
		}
	}
	_, err := z.run.run(ctx, "zpool", "create", "-f", "-m", "none", "-O", "compression=on", z.dataset, dev)
	if err != nil && z.pool.Config["source"] == "" {
		_ = os.Remove(dev)
	}
	return err
}

func (z *zfsDriver) Delete(ctx context.Context) error {
	var err error
	if z.owns {
		if _, lerr := z.run.run(ctx, "zpool", "list", "-H", z.dataset); lerr == nil {
			_, err = z.run.run(ctx, "zpool", "destroy", "-f", z.dataset)
		}
	} else {
		_, err = z.run.run(ctx, "zfs", "destroy", "-r", z.dataset+"/custom")
	}
	if err != nil {
		return err
	}
	_ = os.RemoveAll(z.pool.MountPoint())
	if z.owns && z.pool.Config["source"] == "" {
		return ignoreNotExist(os.Remove(z.pool.LoopFile()))
	}
	return nil
}

func (z *zfsDriver) CreateVolume(ctx context.Context, name string, cfg map[string]string) error {
	return z.CreateTypedVolume(ctx, VolumeCustom, name, cfg)
}

func (z *zfsDriver) DeleteVolume(ctx context.Context, name string) error {
	return z.DeleteTypedVolume(ctx, VolumeCustom, name)
}

// CreateTypedVolume makes the dataset POOL/FOLDER/NAME mounted at the volume's path; the
// parent of container volumes (POOL/containers) is made on first use.
func (z *zfsDriver) CreateTypedVolume(ctx context.Context, typ VolumeType, name string, cfg map[string]string) error {
	folder, err := checkVolume(typ, name)
	if err != nil {
		return err
	}
	if typ != VolumeCustom { // the pool's Create made POOL/custom
		if _, err := z.run.run(ctx, "zfs", "create", "-p", "-o", "mountpoint=none", z.dataset+"/"+folder); err != nil {
			return err
		}
	}
	args := []string{"create", "-o", "mountpoint=" + z.pool.VolumePathOf(typ, name)}
	if cfg["size"] != "" || z.pool.Config["volume.size"] != "" {
		size, err := volumeSize(z.pool, cfg)
		if err != nil {
			return err
		}
		args = append(args, "-o", fmt.Sprintf("quota=%d", size))
	}
	_, err = z.run.run(ctx, "zfs", append(args, z.dataset+"/"+folder+"/"+name)...)
	return err
}

func (z *zfsDriver) DeleteTypedVolume(ctx context.Context, typ VolumeType, name string) error {
	folder, err := checkVolume(typ, name)
	if err != nil {
		return err
	}
	ds := z.dataset + "/" + folder + "/" + name
	if _, err := z.run.run(ctx, "zfs", "list", "-H", "-o", "name", ds); err != nil {
		return nil // already gone
	}
	if _, err := z.run.run(ctx, "zfs", "destroy", "-r", ds); err != nil {
		return err
	}
	return ignoreNotExist(os.Remove(z.pool.VolumePathOf(typ, name)))
}
