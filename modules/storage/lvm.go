package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultThinPool is the thin pool's name when lvm.thinpool_name is not set.
const DefaultThinPool = "OrchThinPool"

// lvmDriver keeps a pool in an LVM thin pool: in a volume group made on a loop file (no
// source) or on the block device in source, or in the existing volume group named by
// source. Volumes are thin LVs named custom_VOL with an ext4 filesystem.
type lvmDriver struct {
	pool     Pool
	run      runner
	vg, thin string
}

func newLVM(p Pool, o Options, r runner) (*lvmDriver, error) {
	if err := needTools("lvm", "lvm2", "lvm", "losetup", "mkfs.ext4", "mount", "umount"); err != nil {
		return nil, err
	}
	if err := o.Kernel("device-mapper"); err != nil {
		return nil, fmt.Errorf("lvm driver: %w", err)
	}
	d := &lvmDriver{pool: p, run: r, vg: p.Config["lvm.vg_name"], thin: p.Config["lvm.thinpool_name"]}
	if src := p.Config["source"]; src != "" && !strings.HasPrefix(src, "/") {
		d.vg = src // an existing volume group
	}
	if d.vg == "" {
		d.vg = p.Name
	}
	if d.thin == "" {
		d.thin = DefaultThinPool
	}
	return d, nil
}

// ownsVG reports whether the pool made its volume group (and so deletes it).
func (l *lvmDriver) ownsVG() bool {
	src := l.pool.Config["source"]
	return src == "" || strings.HasPrefix(src, "/")
}

func (l *lvmDriver) Create(ctx context.Context) error {
	if l.ownsVG() {
		if _, err := l.run.run(ctx, "lvm", "vgs", "--noheadings", l.vg); err != nil {
			if err := l.makeVG(ctx); err != nil {
				return err
			}
		}
	}
	if _, err := l.run.run(ctx, "lvm", "lvs", "--noheadings", l.vg+"/"+l.thin); err != nil {
		if _, err := l.run.run(ctx, "lvm", "lvcreate", "-y", "--type", "thin-pool", "--extents", "100%FREE", "--name", l.thin, l.vg); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(l.pool.MountPoint(), "custom"), 0o711)
}

// makeVG makes the physical volume and the volume group on the loop file or source.
func (l *lvmDriver) makeVG(ctx context.Context) error {
	dev := l.pool.Config["source"]
	if dev == "" {
		var err error
		if dev, err = l.attachLoop(ctx); err != nil {
			return err
		}
	}
	if _, err := l.run.run(ctx, "lvm", "pvcreate", "-y", dev); err != nil {
		return err
	}
	_, err := l.run.run(ctx, "lvm", "vgcreate", l.vg, dev)
	return err
}

// attachLoop makes the loop file and attaches it (or finds it attached).
func (l *lvmDriver) attachLoop(ctx context.Context) (string, error) {
	file, err := makeLoopFile(l.pool)
	if err != nil {
		return "", err
	}
	if dev := l.loopDevice(ctx); dev != "" {
		return dev, nil
	}
	out, err := l.run.run(ctx, "losetup", "--find", "--show", file)
	return strings.TrimSpace(out), err
}

// loopDevice is the loop device the pool's loop file is attached to, "" if none.
func (l *lvmDriver) loopDevice(ctx context.Context) string {
	out, err := l.run.run(ctx, "losetup", "--noheadings", "--output", "NAME", "--associated", l.pool.LoopFile())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
}

func (l *lvmDriver) Delete(ctx context.Context) error {
	if err := l.run.unmount(ctx, filepath.Join(l.pool.MountPoint(), "custom")); err != nil {
		return err
	}
	_ = os.RemoveAll(l.pool.MountPoint())
	if !l.ownsVG() {
		_, err := l.run.run(ctx, "lvm", "lvremove", "-y", l.vg+"/"+l.thin)
		return err
	}
	if _, err := l.run.run(ctx, "lvm", "vgs", "--noheadings", l.vg); err == nil {
		if _, err := l.run.run(ctx, "lvm", "vgremove", "-y", l.vg); err != nil {
			return err
		}
	}
	dev := l.pool.Config["source"]
	if dev == "" {
		dev = l.loopDevice(ctx)
	}
	if dev != "" {
		if _, err := l.run.run(ctx, "lvm", "pvremove", "-y", dev); err != nil {
			return err
		}
	}
	if l.pool.Config["source"] != "" {
		return nil
	}
	if dev != "" {
		if _, err := l.run.run(ctx, "losetup", "--detach", dev); err != nil {
			return err
		}
	}
	return ignoreNotExist(os.Remove(l.pool.LoopFile()))
}

func (l *lvmDriver) CreateVolume(ctx context.Context, name string, cfg map[string]string) error {
	return l.CreateTypedVolume(ctx, VolumeCustom, name, cfg)
}

func (l *lvmDriver) DeleteVolume(ctx context.Context, name string) error {
	return l.DeleteTypedVolume(ctx, VolumeCustom, name)
}

// CreateTypedVolume makes a thin LV FOLDER_NAME (custom_v1, containers_c1) with ext4,
// mounted at the volume's path.
func (l *lvmDriver) CreateTypedVolume(ctx context.Context, typ VolumeType, name string, cfg map[string]string) error {
	folder, err := checkVolume(typ, name)
	if err != nil {
		return err
	}
	size, err := volumeSize(l.pool, cfg)
	if err != nil {
		return err
	}
	path, lv := l.pool.VolumePathOf(typ, name), folder+"_"+name
	if exists(path) {
		return fmt.Errorf("%w: %s", ErrVolumeExists, path)
	}
	if _, err := l.run.run(ctx, "lvm", "lvcreate", "-y", "--type", "thin", "--virtualsize", fmt.Sprintf("%db", size),
		"--thinpool", l.thin, "--name", lv, l.vg); err != nil {
		return err
	}
	dev := "/dev/" + l.vg + "/" + lv
	if err := l.formatAndMount(ctx, dev, path); err != nil {
		_ = os.Remove(path)
		_, _ = l.run.run(ctx, "lvm", "lvremove", "-y", l.vg+"/"+lv)
		return err
	}
	return nil
}

// formatAndMount puts ext4 on a new thin LV and mounts it at path.
func (l *lvmDriver) formatAndMount(ctx context.Context, dev, path string) error {
	if _, err := l.run.run(ctx, "mkfs.ext4", "-q", dev); err != nil {
		return err
	}
	if err := os.MkdirAll(path, 0o711); err != nil {
		return err
	}
	_, err := l.run.run(ctx, "mount", dev, path)
	return err
}

func (l *lvmDriver) DeleteTypedVolume(ctx context.Context, typ VolumeType, name string) error {
	folder, err := checkVolume(typ, name)
	if err != nil {
		return err
	}
	if err := l.run.unmount(ctx, l.pool.VolumePathOf(typ, name)); err != nil {
		return err
	}
	lv := l.vg + "/" + folder + "_" + name
	if _, err := l.run.run(ctx, "lvm", "lvs", "--noheadings", lv); err != nil {
		return nil // already gone
	}
	_, err = l.run.run(ctx, "lvm", "lvremove", "-y", lv)
	return err
}

// volumeSize is a volume's size: its "size" key, else the pool's "volume.size", else 1GiB.
func volumeSize(p Pool, cfg map[string]string) (int64, error) {
	s := cfg["size"]
	if s == "" {
		s = p.Config["volume.size"]
	}
	if s == "" {
		s = DefaultSize
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, fmt.Errorf("pool %s: volume %w", p.Name, err)
	}
	return n, nil
}
