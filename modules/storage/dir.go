package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrVolumeExists is returned when creating a volume whose directory, subvolume, LV or
// dataset is already there.
var ErrVolumeExists = errors.New("volume already exists")

// dirDriver keeps a pool in a directory: DIR/storage-pools/NAME, or a symlink there to the
// directory in source. Volumes are directories.
type dirDriver struct{ pool Pool }

func (d *dirDriver) Create(ctx context.Context) error {
	mp := d.pool.MountPoint()
	if src := d.pool.Config["source"]; src != "" {
		if err := os.MkdirAll(src, 0o711); err != nil {
			return fmt.Errorf("pool %s: source: %w", d.pool.Name, err)
		}
		if err := os.MkdirAll(filepath.Dir(mp), 0o711); err != nil {
			return err
		}
		if target, err := os.Readlink(mp); err != nil || target != src {
			_ = os.Remove(mp)
			if err := os.Symlink(src, mp); err != nil {
				return fmt.Errorf("pool %s: %w", d.pool.Name, err)
			}
		}
	}
	return os.MkdirAll(filepath.Join(mp, "custom"), 0o711)
}

func (d *dirDriver) Delete(ctx context.Context) error {
	mp := d.pool.MountPoint()
	if d.pool.Config["source"] != "" {
		// The source belongs to the user: remove only what the pool put there.
		if err := os.RemoveAll(filepath.Join(d.pool.Config["source"], "custom")); err != nil {
			return err
		}
		_ = os.Remove(filepath.Join(d.pool.Config["source"], "containers")) // empty: instances are gone
		return ignoreNotExist(os.Remove(mp))
	}
	return os.RemoveAll(mp)
}

func (d *dirDriver) CreateVolume(ctx context.Context, name string, cfg map[string]string) error {
	return d.CreateTypedVolume(ctx, VolumeCustom, name, cfg)
}

func (d *dirDriver) DeleteVolume(ctx context.Context, name string) error {
	return d.DeleteTypedVolume(ctx, VolumeCustom, name)
}

func (d *dirDriver) CreateTypedVolume(ctx context.Context, typ VolumeType, name string, _ map[string]string) error {
	if _, err := checkVolume(typ, name); err != nil {
		return err
	}
	p := d.pool.VolumePathOf(typ, name)
	if exists(p) {
		return fmt.Errorf("%w: %s", ErrVolumeExists, p)
	}
	return os.MkdirAll(p, 0o711)
}

func (d *dirDriver) DeleteTypedVolume(ctx context.Context, typ VolumeType, name string) error {
	if _, err := checkVolume(typ, name); err != nil {
		return err
	}
	return os.RemoveAll(d.pool.VolumePathOf(typ, name))
}

func ignoreNotExist(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
