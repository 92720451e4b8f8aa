// Package storage makes a member's part of a storage pool and its custom volumes: a
// directory, a btrfs filesystem (on a loop file or a block device), an LVM thin pool or a
// ZFS pool. Every pool lives at DIR/storage-pools/NAME and its loop file, if any, at
// DIR/disks/NAME.img, DIR being the agent directory. Missing tools or kernel support are
// reported as errors naming what is missing; there is never a silent fallback.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Sentinel errors of the package.
var (
	// ErrUnknownDriver is returned for a driver name other than dir, btrfs, lvm and zfs.
	ErrUnknownDriver = errors.New("unknown storage driver")
	// ErrMissingTool is matched by the error of a driver whose command-line tools are absent.
	ErrMissingTool = errors.New("missing tool")
	// ErrNoKernelSupport is matched by the error of a driver the kernel cannot serve.
	ErrNoKernelSupport = errors.New("missing kernel support")
	// ErrBadName is returned for a pool or volume name that is not a plain name.
	ErrBadName = errors.New("bad name")
	// ErrBadConfig is returned for a config value the driver cannot use.
	ErrBadConfig = errors.New("bad config")
)

// Drivers are the driver names New accepts.
var Drivers = []string{"dir", "btrfs", "lvm", "zfs"}

// DefaultSize is the size of a loop file when the pool has neither source nor size.
const DefaultSize = "1GiB"

// Pool is one member's part of a storage pool.
type Pool struct {
	// Name of the pool.
	Name string
	// AgentDir is the member's agent directory.
	AgentDir string
	// Config is the pool's configuration as the member sees it: global keys plus this
	// member's node-specific keys (source, size, zfs.pool_name, lvm.vg_name, lvm.thinpool_name).
	Config map[string]string
}

// MountPoint is where the pool is reachable: DIR/storage-pools/NAME.
func (p Pool) MountPoint() string { return filepath.Join(p.AgentDir, "storage-pools", p.Name) }

// LoopFile is the pool's loop file when it has no source: DIR/disks/NAME.img.
func (p Pool) LoopFile() string { return filepath.Join(p.AgentDir, "disks", p.Name+".img") }

// VolumePath is where custom volume vol is mounted: MOUNTPOINT/custom/VOL.
func (p Pool) VolumePath(vol string) string { return filepath.Join(p.MountPoint(), "custom", vol) }

// Options are what every driver shares.
type Options struct {
	// Logger receives one line per command run; nil discards.
	Logger *slog.Logger
	// Kernel checks that the kernel provides a feature ("btrfs", "device-mapper", "zfs");
	// nil checks the running kernel (/proc/filesystems, /proc/misc, /sys/module).
	Kernel func(feature string) error
}

// Driver is what the daemon needs of a pool's driver. Create and Delete are idempotent:
// Create on a pool that exists makes sure it is mounted (after a reboot), Delete of a pool
// that is gone succeeds.
type Driver interface {
	Create(ctx context.Context) error
	Delete(ctx context.Context) error
	CreateVolume(ctx context.Context, name string, config map[string]string) error
	DeleteVolume(ctx context.Context, name string) error
	// CreateTypedVolume and DeleteTypedVolume act on a volume of any type; CreateVolume
	// and DeleteVolume are those of custom volumes.
	CreateTypedVolume(ctx context.Context, typ VolumeType, name string, config map[string]string) error
	DeleteTypedVolume(ctx context.Context, typ VolumeType, name string) error
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`) })

// CheckName refuses names that are not usable as file, LV or dataset names.
func CheckName(kind, name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("%w: %s name %q (letters, digits, '_', '.', '-'; at most 63)", ErrBadName, kind, name)
	}
	return nil
}

// New returns the driver for p, after checking that its tools and kernel support exist.
func New(driver string, p Pool, o Options) (Driver, error) {
	if err := CheckName("pool", p.Name); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Kernel == nil {
		o.Kernel = kernelHas
	}
	if p.Config == nil {
		p.Config = map[string]string{}
	}
	r := runner{log: o.Logger.With("pool", p.Name, "driver", driver)}
	switch driver {
	case "dir":
		return &dirDriver{pool: p}, nil
	case "btrfs":
		return newBtrfs(p, o, r)
	case "lvm":
		return newLVM(p, o, r)
	case "zfs":
		return newZFS(p, o, r)
	}
	return nil, fmt.Errorf("%w %q (one of %s)", ErrUnknownDriver, driver, strings.Join(Drivers, ", "))
}

// needTools refuses when a command is not on PATH, naming the commands and the package.
func needTools(driver, pkg string, tools ...string) error {
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s driver: %w: %s not found on PATH (install %s)", driver, ErrMissingTool, strings.Join(missing, ", "), pkg)
	}
	return nil
}

// kernelHas checks the running kernel for a feature.
func kernelHas(feature string) error {
	var ok bool
	switch feature {
	case "btrfs":
		ok = fileHasWord("/proc/filesystems", "btrfs") || exists("/sys/module/btrfs")
	case "device-mapper":
		ok = fileHasWord("/proc/misc", "device-mapper")
	case "zfs":
		ok = exists("/sys/module/zfs") || exists("/dev/zfs")
	default:
		return fmt.Errorf("%w: unknown feature %q", ErrNoKernelSupport, feature)
	}
	if !ok {
		return fmt.Errorf("%w: the running kernel has no %s (load its module, e.g. modprobe %s)", ErrNoKernelSupport, feature, moduleOf(feature))
	}
	return nil
}

func moduleOf(feature string) string {
	if feature == "device-mapper" {
		return "dm_thin_pool"
	}
	return feature
}

func fileHasWord(path, word string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(b)) {
		if f == word {
			return true
		}
	}
	return false
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runner runs a driver's commands, logging each one.
type runner struct{ log *slog.Logger }

// run runs name with args; the error names the command line and carries its stderr.
func (r runner) run(ctx context.Context, name string, args ...string) (string, error) {
	r.log.Debug("running", "cmd", name, "args", args)
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// parseSize reads sizes as LXD writes them: 10GiB, 500MB, 1G, 1073741824.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: size %q", ErrBadConfig, s)
	}
	return int64(n * float64(mult)), nil
}

// makeLoopFile creates the pool's sparse loop file sized by the "size" key.
func makeLoopFile(p Pool) (string, error) {
	size := p.Config["size"]
	if size == "" {
		size = DefaultSize
	}
	n, err := parseSize(size)
	if err != nil {
		return "", fmt.Errorf("pool %s: %w", p.Name, err)
	}
	file := p.LoopFile()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if st, _ := f.Stat(); st != nil && st.Size() >= n {
		return file, nil
	}
	return file, f.Truncate(n)
}

// isBlockDevice reports whether path is a block device.
func isBlockDevice(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
}
