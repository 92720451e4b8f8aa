package lxc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"orch/internal/atomicfile"
)

// Settings are what of a container can change after it was made: its resource limits and
// the devices beyond its root disk and eth0. They live in the tail of its LXC config, after
// settingsMarker, which Apply rewrites as a whole (LXC gives them at the next start); on a
// running container Apply also changes them at once: limits in its cgroups, disks and
// interfaces by hotplug (hotplug.go).
type Settings struct {
	Limits Limits
	// NICs are interfaces beyond eth0, each a veth on a host bridge.
	NICs []NIC
	// Disks are host directories bind-mounted into the container.
	Disks []Disk
}

// Limits are a container's resource limits; a zero field is no limit.
type Limits struct {
	// CPUs is the cpuset the container runs on ("0-1,3").
	CPUs string
	// Memory is the memory limit in bytes.
	Memory int64
	// Processes is the most processes (tasks) the container may have.
	Processes int64
}

// NIC is an interface named Name in the container, a veth on the host bridge Bridge.
type NIC struct {
	Name, Bridge, HWAddr string
	MTU                  int
}

// Disk is the host directory Source mounted at Path in the container.
type Disk struct {
	Source, Path string
	ReadOnly     bool
	// File is set when Source is a file, not a directory.
	File bool
}

// settingsMarker starts the part of the config Apply owns, settingsEnd ends it (lxc-create
// appends its own keys after what it was given).
const (
	settingsMarker = "# orch settings: limits and devices (rewritten on every change)\n"
	settingsEnd    = "# end of orch settings\n"
)

// Apply makes s the container's settings: the config's tail now, and on a running
// container its limits in its cgroups, its disks and its interfaces (hotplug.go). A change
// of disks on a container started before it could take them live is refused with
// ErrRunning, changing nothing.
func (m *Manager) Apply(ctx context.Context, name string, s Settings) error {
	if err := m.need(name); err != nil {
		return err
	}
	conf, err := m.readConfig(name)
	if err != nil {
		return err
	}
	next := m.renderSettings(name, s)
	if next == conf.block {
		return nil
	}
	st, err := m.state(ctx, name)
	if err != nil {
		return err
	}
	if st != StateStopped {
		if err := m.applyLive(ctx, name, parseSettings(conf.block), s); err != nil {
			return err
		}
	}
	return writeConfig(m.configPath(name), conf.with(next))
}

// configParts is a container's LXC config split around its settings block: what comes
// before it, the block (without its markers) and what lxc-create appended after it. A
// config from before settings blocks is all head.
type configParts struct {
	head, block, after string
	hasBlock           bool
}

// readConfig reads and splits the container's config.
func (m *Manager) readConfig(name string) (configParts, error) {
	b, err := os.ReadFile(m.configPath(name))
	if err != nil {
		return configParts{}, fmt.Errorf("%s: %w", name, err)
	}
	var c configParts
	var rest string
	c.head, rest, c.hasBlock = strings.Cut(string(b), settingsMarker)
	c.block, c.after, _ = strings.Cut(rest, settingsEnd)
	return c, nil
}

// with is the config with block as its settings block.
func (c configParts) with(block string) string {
	return c.head + settingsMarker + block + settingsEnd + c.after
}

// applyLive changes a running container from prev to s: limits, then disks, then
// interfaces (what was done undone if a later step fails). A container started before it
// could take disks live refuses a change of disks with ErrRunning.
func (m *Manager) applyLive(ctx context.Context, name string, prev, s Settings) error {
	disks := !slices.Equal(prev.Disks, s.Disks)
	if disks && !m.canHotplug(ctx, name) {
		return fmt.Errorf("%s: disks change: %w and was started before disks could be added live (stop it first)", name, ErrRunning)
	}
	if err := m.setLimits(ctx, name, s.Limits); err != nil {
		return err
	}
	undo := context.WithoutCancel(ctx)
	if disks {
		if err := m.hotplugDisks(ctx, name, prev.Disks, s.Disks); err != nil {
			_ = m.setLimits(undo, name, prev.Limits)
			return err
		}
	}
	if err := m.hotplugNICs(ctx, name, prev.NICs, s.NICs); err != nil {
		if disks {
			_ = m.hotplugDisks(undo, name, s.Disks, prev.Disks)
		}
		_ = m.setLimits(undo, name, prev.Limits)
		return err
	}
	return nil
}

// settingsJSON starts the settings block's line that records the settings themselves, for
// the next Apply to compare with.
const settingsJSON = "# settings: "

// parseSettings reads the settings a block records (zero when it records none).
func parseSettings(block string) Settings {
	var s Settings
	for _, line := range strings.Split(block, "\n") {
		if j, ok := strings.CutPrefix(line, settingsJSON); ok {
			_ = json.Unmarshal([]byte(j), &s)
		}
	}
	return s
}

// renderSettings is the settings block for s: the shmounts directory's mount, s itself as
// JSON, the limits, then the devices.
func (m *Manager) renderSettings(name string, s Settings) string {
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	kv("lxc.mount.entry", m.shmountsEntry(name))
	j, _ := json.Marshal(s)
	b.WriteString(settingsJSON + string(j) + "\n")
	keys := cgroupKeys()
	if s.Limits.CPUs != "" {
		kv(keys.prefix+"cpuset.cpus", s.Limits.CPUs)
	}
	if s.Limits.Memory > 0 {
		kv(keys.prefix+keys.memory, strconv.FormatInt(s.Limits.Memory, 10))
	}
	if s.Limits.Processes > 0 {
		kv(keys.prefix+"pids.max", strconv.FormatInt(s.Limits.Processes, 10))
	}
	for i, n := range s.NICs {
		p := fmt.Sprintf("lxc.net.%d.", i+1)
		kv(p+"type", "veth")
		kv(p+"link", n.Bridge)
		kv(p+"flags", "up")
		kv(p+"name", n.Name)
		if n.HWAddr != "" {
			kv(p+"hwaddr", n.HWAddr)
		}
		if n.MTU > 0 {
			kv(p+"mtu", strconv.Itoa(n.MTU))
		}
	}
	for _, d := range s.Disks {
		opts := "bind,create=dir"
		if d.File {
			opts = "bind,create=file"
		}
		if d.ReadOnly {
			opts += ",ro"
		}
		kv("lxc.mount.entry", fmt.Sprintf("%s %s none %s 0 0", escapeMount(d.Source), escapeMount(strings.TrimPrefix(d.Path, "/")), opts))
	}
	return b.String()
}

// escapeMount escapes a path for an fstab-style field (spaces, tabs, backslashes).
func escapeMount(p string) string {
	return strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(p)
}

// cgroupNaming is the LXC config prefix and the memory limit file of the cgroup version
// the host runs containers under.
type cgroupNaming struct{ prefix, memory, noMemory string }

// cgroupKeys is cgroup v2's naming when /sys/fs/cgroup is the unified hierarchy, else v1's
// (a hybrid host's controllers are v1).
func cgroupKeys() cgroupNaming {
	var fs unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &fs) == nil && fs.Type == unix.CGROUP2_SUPER_MAGIC {
		return cgroupNaming{"lxc.cgroup2.", "memory.max", "max"}
	}
	return cgroupNaming{"lxc.cgroup.", "memory.limit_in_bytes", "-1"}
}

// setLimits sets l in a running container's cgroups (lxc-cgroup), a zero field lifting
// that limit: all online CPUs, no memory limit, no process limit.
func (m *Manager) setLimits(ctx context.Context, name string, l Limits) error {
	keys := cgroupKeys()
	cpus := l.CPUs
	if cpus == "" {
		b, err := os.ReadFile("/sys/devices/system/cpu/online")
		if err != nil {
			return fmt.Errorf("%s: online CPUs: %w", name, err)
		}
		cpus = strings.TrimSpace(string(b))
	}
	mem, pids := keys.noMemory, "max"
	if l.Memory > 0 {
		mem = strconv.FormatInt(l.Memory, 10)
	}
	if l.Processes > 0 {
		pids = strconv.FormatInt(l.Processes, 10)
	}
	for _, kv := range [][2]string{{"cpuset.cpus", cpus}, {keys.memory, mem}, {"pids.max", pids}} {
		if err := m.cgroupSet(ctx, name, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// cgroupSet writes one cgroup file of a running container.
func (m *Manager) cgroupSet(ctx context.Context, name, key, value string) error {
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	_, err := m.run(ctx, call{tool: "lxc-cgroup", name: name, args: m.args(name, "--", key, value)})
	if err != nil {
		return fmt.Errorf("%s: setting %s to %s: %w", name, key, value, err)
	}
	return nil
}

// CgroupValue reads one cgroup file of a running container (lxc-cgroup without a value).
func (m *Manager) CgroupValue(ctx context.Context, name, key string) (string, error) {
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	out, err := m.run(ctx, call{tool: "lxc-cgroup", name: name, args: m.args(name, key)})
	return strings.TrimSpace(out), err
}

// configPerm is the mode of a container config file that does not exist yet.
const configPerm = 0o640

// writeConfig replaces a container's config file with data, atomically and durably,
// keeping the mode the file had (lxc-create's or an admin's), else configPerm.
func writeConfig(path, data string) error {
	return atomicfile.Write(path, []byte(data), atomicfile.ExistingPerm(path, configPerm))
}

// Rename renames the stopped container old to name, whose root filesystem is now at
// rootfs (the caller moved it): its directory, and the keys of its config that hold its
// name or paths under its directory (host name, log, cgroups, rootfs, the shmounts mount).
func (m *Manager) Rename(ctx context.Context, old, name, rootfs string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if m.Exists(name) {
		return fmt.Errorf("%s: %w", name, ErrExists)
	}
	st, err := m.state(ctx, old)
	if err != nil {
		return err
	}
	if st != StateStopped {
		return fmt.Errorf("%s: %w: stop it first", old, ErrRunning)
	}
	if err := m.releaseShmounts(old); err != nil {
		return err
	}
	c, err := m.readConfig(old)
	if err != nil {
		return err
	}
	cg := m.cgroupNames(name)
	replace := map[string]string{
		"lxc.uts.name":             name,
		"lxc.log.file":             m.logPath(name),
		"lxc.rootfs.path":          "dir:" + rootfs,
		"lxc.cgroup.dir.monitor":   cg[0],
		"lxc.cgroup.dir.container": cg[1],
	}
	fix := func(text string) string {
		lines := strings.Split(text, "\n")
		for i, line := range lines {
			k, _, ok := strings.Cut(line, "=")
			if v, found := replace[strings.TrimSpace(k)]; ok && found {
				lines[i] = strings.TrimSpace(k) + " = " + v
			}
		}
		return strings.Join(lines, "\n")
	}
	conf := fix(c.head)
	if c.hasBlock {
		conf = configParts{head: conf, after: fix(c.after)}.with(m.renderSettings(name, parseSettings(c.block)))
	}
	if err := os.Rename(m.dir(old), m.dir(name)); err != nil {
		return fmt.Errorf("%s: %w", old, err)
	}
	if err := writeConfig(m.configPath(name), conf); err != nil {
		return errors.Join(err, os.Rename(m.dir(name), m.dir(old)))
	}
	return nil
}
