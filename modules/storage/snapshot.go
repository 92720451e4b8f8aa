package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Snapshots of container volumes (LXD's instance snapshots), on the drivers that make
// them here: btrfs (read-only subvolume snapshots, restored by a writable snapshot of the
// snapshot) and dir (a copy with cp -a, reflinked where the filesystem can). A snapshot of
// container NAME is MOUNTPOINT/containers-snapshots/NAME/SNAP, as LXD lays them out.

// ErrNoSnapshots is returned by a pool whose driver makes no snapshots here.
var ErrNoSnapshots = errors.New("this pool's driver makes no snapshots here (dir and btrfs do)")

// Snapshotter is a driver that snapshots container volumes.
type Snapshotter interface {
	// Snapshot makes snapshot snap of container name.
	Snapshot(ctx context.Context, name, snap string) error
	// Restore makes container name what snapshot snap holds (the container stopped).
	Restore(ctx context.Context, name, snap string) error
	// DeleteSnapshot removes snapshot snap of container name ("" removes all of them).
	DeleteSnapshot(ctx context.Context, name, snap string) error
}

// SnapshotsOf is d's Snapshotter, or ErrNoSnapshots.
func SnapshotsOf(d Driver) (Snapshotter, error) {
	if s, ok := d.(Snapshotter); ok {
		return s, nil
	}
	return nil, ErrNoSnapshots
}

// SnapshotPath is where snapshot snap of container name is.
func (p Pool) SnapshotPath(name, snap string) string {
	return filepath.Join(p.MountPoint(), "containers-snapshots", name, snap)
}

// snapshotPaths checks the names and returns the container's and the snapshot's paths.
func snapshotPaths(p Pool, name, snap string) (vol, dst string, err error) {
	if _, err := checkVolume(VolumeContainer, name); err != nil {
		return "", "", err
	}
	if err := CheckName("snapshot", snap); err != nil {
		return "", "", err
	}
	return p.VolumePathOf(VolumeContainer, name), p.SnapshotPath(name, snap), nil
}

// newSnapshot is snapshotPaths for a snapshot to make: it must not exist; its folder is made.
func newSnapshot(p Pool, name, snap string) (vol, dst string, err error) {
	if vol, dst, err = snapshotPaths(p, name, snap); err != nil {
		return "", "", err
	}
	if exists(dst) {
		return "", "", fmt.Errorf("%w: %s", ErrVolumeExists, dst)
	}
	return vol, dst, os.MkdirAll(filepath.Dir(dst), 0o700)
}

// oldSnapshot is snapshotPaths for a snapshot to restore: it must exist.
func oldSnapshot(p Pool, name, snap string) (vol, src string, err error) {
	if vol, src, err = snapshotPaths(p, name, snap); err != nil {
		return "", "", err
	}
	if !exists(src) {
		return "", "", fmt.Errorf("snapshot %s of %s: %w", snap, name, os.ErrNotExist)
	}
	return vol, src, nil
}

func (b *btrfsDriver) Snapshot(ctx context.Context, name, snap string) error {
	vol, dst, err := newSnapshot(b.pool, name, snap)
	if err != nil {
		return err
	}
	_, err = b.run.run(ctx, "btrfs", "subvolume", "snapshot", "-r", vol, dst)
	return err
}

func (b *btrfsDriver) Restore(ctx context.Context, name, snap string) error {
	vol, src, err := oldSnapshot(b.pool, name, snap)
	if err != nil {
		return err
	}
	old := vol + ".restoring"
	if err := os.Rename(vol, old); err != nil {
		return err
	}
	if _, err := b.run.run(ctx, "btrfs", "subvolume", "snapshot", src, vol); err != nil {
		return errors.Join(err, os.Rename(old, vol))
	}
	_, err = b.run.run(ctx, "btrfs", "subvolume", "delete", old)
	return err
}

func (b *btrfsDriver) DeleteSnapshot(ctx context.Context, name, snap string) error {
	if snap == "" {
		return b.deleteAll(ctx, name)
	}
	_, dst, err := snapshotPaths(b.pool, name, snap)
	if err != nil || !exists(dst) {
		return err
	}
	_, err = b.run.run(ctx, "btrfs", "subvolume", "delete", dst)
	return err
}

// deleteAll removes every snapshot of container name, then their folder.
func (b *btrfsDriver) deleteAll(ctx context.Context, name string) error {
	dir := filepath.Dir(b.pool.SnapshotPath(name, "x"))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ignoreNotExist(err)
	}
	for _, e := range entries {
		if _, err := b.run.run(ctx, "btrfs", "subvolume", "delete", filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(dir)
}

func (d *dirDriver) Snapshot(ctx context.Context, name, snap string) error {
	vol, dst, err := newSnapshot(d.pool, name, snap)
	if err != nil {
		return err
	}
	if err := copyTree(ctx, vol, dst); err != nil {
		_ = os.RemoveAll(dst)
		return err
	}
	return nil
}

func (d *dirDriver) Restore(ctx context.Context, name, snap string) error {
	vol, src, err := oldSnapshot(d.pool, name, snap)
	if err != nil {
		return err
	}
	next := vol + ".restoring"
	_ = os.RemoveAll(next)
	if err := copyTree(ctx, src, next); err != nil {
		_ = os.RemoveAll(next)
		return err
	}
	old := vol + ".old"
	if err := os.Rename(vol, old); err != nil {
		return err
	}
	if err := os.Rename(next, vol); err != nil {
		return errors.Join(err, os.Rename(old, vol))
	}
	return os.RemoveAll(old)
}

func (d *dirDriver) DeleteSnapshot(ctx context.Context, name, snap string) error {
	if snap == "" {
		return os.RemoveAll(filepath.Dir(d.pool.SnapshotPath(name, "x")))
	}
	_, dst, err := snapshotPaths(d.pool, name, snap)
	if err != nil {
		return err
	}
	return os.RemoveAll(dst)
}

// copyTree copies the directory src to dst (which must not exist) with owners, modes,
// times, links and extended attributes, reflinked where the filesystem can.
func copyTree(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %w: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Renamer is a driver that renames container volumes, their snapshots with them.
type Renamer interface {
	RenameContainer(ctx context.Context, old, name string) error
}

// ErrNoRename is returned by a pool whose driver cannot rename container volumes here.
var ErrNoRename = errors.New("this pool's driver cannot rename instances here (dir and btrfs can)")

// RenamerOf is d's Renamer, or ErrNoRename.
func RenamerOf(d Driver) (Renamer, error) {
	if r, ok := d.(Renamer); ok {
		return r, nil
	}
	return nil, ErrNoRename
}

func (b *btrfsDriver) RenameContainer(_ context.Context, old, name string) error {
	return renameContainer(b.pool, old, name)
}

func (d *dirDriver) RenameContainer(_ context.Context, old, name string) error {
	return renameContainer(d.pool, old, name)
}

// renameContainer renames the volume's folder (a btrfs subvolume renames as a folder) and
// its snapshots' folder, putting the first back if the second fails.
func renameContainer(p Pool, old, name string) error {
	if _, err := checkVolume(VolumeContainer, name); err != nil {
		return err
	}
	from, to := p.VolumePathOf(VolumeContainer, old), p.VolumePathOf(VolumeContainer, name)
	if exists(to) {
		return fmt.Errorf("%w: %s", ErrVolumeExists, to)
	}
	if err := os.Rename(from, to); err != nil {
		return err
	}
	sfrom, sto := filepath.Dir(p.SnapshotPath(old, "x")), filepath.Dir(p.SnapshotPath(name, "x"))
	if !exists(sfrom) {
		return nil
	}
	if err := os.Rename(sfrom, sto); err != nil {
		return errors.Join(err, os.Rename(to, from))
	}
	return nil
}
