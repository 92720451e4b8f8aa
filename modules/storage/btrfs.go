package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// btrfsDriver keeps a pool on a btrfs filesystem: a loop file DIR/disks/NAME.img sized by
// "size" when there is no source, else the block device in source. Volumes are subvolumes.
type btrfsDriver struct {
	pool Pool
	run  runner
}

func newBtrfs(p Pool, o Options, r runner) (*btrfsDriver, error) {
	if err := needTools("btrfs", "btrfs-progs", "mkfs.btrfs", "btrfs", "mount", "umount"); err != nil {
		return nil, err
	}
	if err := o.Kernel("btrfs"); err != nil {
		return nil, fmt.Errorf("btrfs driver: %w", err)
	}
	if src := p.Config["source"]; src != "" && !isBlockDevice(src) {
		return nil, fmt.Errorf("btrfs driver: pool %s: %w: source %q is not a block device", p.Name, ErrBadConfig, src)
	}
	return &btrfsDriver{pool: p, run: r}, nil
}

func (b *btrfsDriver) Create(ctx context.Context) (err error) {
	mp := b.pool.MountPoint()
	if mounted(mp) {
		return os.MkdirAll(filepath.Join(mp, "custom"), 0o711)
	}
	dev, fresh, err := b.device()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && fresh && b.pool.Config["source"] == "" {
			_ = os.Remove(dev)
		}
	}()
	if fresh {
		if _, err := b.run.run(ctx, "mkfs.btrfs", "-q", "-f", "-L", b.pool.Name, dev); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(mp, 0o711); err != nil {
		return err
	}
	args := []string{dev, mp}
	if b.pool.Config["source"] == "" {
		args = []string{"-o", "loop", dev, mp} // autoclear: unmounting frees the loop device
	}
	if _, err := b.run.run(ctx, "mount", args...); err != nil {
		_ = os.Remove(mp)
		return err
	}
	return os.MkdirAll(filepath.Join(mp, "custom"), 0o711)
}

// device returns the loop file or block device, and whether it needs a filesystem.
func (b *btrfsDriver) device() (string, bool, error) {
	if src := b.pool.Config["source"]; src != "" {
		_, err := b.run.run(context.Background(), "btrfs", "filesystem", "show", src)
		return src, err != nil, nil
	}
	fresh := !exists(b.pool.LoopFile())
	file, err := makeLoopFile(b.pool)
	return file, fresh, err
}

func (b *btrfsDriver) Delete(ctx context.Context) error {
	if err := b.run.unmount(ctx, b.pool.MountPoint()); err != nil {
		return fmt.Errorf("pool %s: %w", b.pool.Name, err)
	}
	if b.pool.Config["source"] == "" {
		return ignoreNotExist(os.Remove(b.pool.LoopFile()))
	}
	return nil
}

func (b *btrfsDriver) CreateVolume(ctx context.Context, name string, cfg map[string]string) error {
	return b.CreateTypedVolume(ctx, VolumeCustom, name, cfg)
}

func (b *btrfsDriver) DeleteVolume(ctx context.Context, name string) error {
	return b.DeleteTypedVolume(ctx, VolumeCustom, name)
}

func (b *btrfsDriver) CreateTypedVolume(ctx context.Context, typ VolumeType, name string, _ map[string]string) error {
	if _, err := checkVolume(typ, name); err != nil {
		return err
	}
	p := b.pool.VolumePathOf(typ, name)
	if exists(p) {
		return fmt.Errorf("%w: %s", ErrVolumeExists, p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o711); err != nil {
		return err
	}
	_, err := b.run.run(ctx, "btrfs", "subvolume", "create", p)
	return err
}

func (b *btrfsDriver) DeleteTypedVolume(ctx context.Context, typ VolumeType, name string) error {
	if _, err := checkVolume(typ, name); err != nil {
		return err
	}
	p := b.pool.VolumePathOf(typ, name)
	if !exists(p) {
		return nil
	}
	_, err := b.run.run(ctx, "btrfs", "subvolume", "delete", p)
	return err
}
