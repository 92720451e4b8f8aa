package lxc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// CreateConfig describes a new container.
type CreateConfig struct {
	// Rootfs is the directory holding the container's root filesystem, already unpacked
	// (a storage volume the caller made). Required.
	Rootfs string
	// Bridge is the host bridge eth0's veth is attached to. Empty means no eth0.
	Bridge string
	// HWAddr is eth0's MAC address. Empty lets LXC choose one.
	HWAddr string
	// IPv4 is a static address with prefix for eth0 (such as "10.0.3.5/24"). Empty means
	// the container configures eth0 itself (DHCP).
	IPv4 string
	// IPv4Gateway is the default gateway set when IPv4 is static.
	IPv4Gateway string
	// MTU of eth0; 0 keeps the bridge's.
	MTU int
	// Raw holds extra LXC configuration keys (such as "lxc.cgroup2.memory.max"), appended
	// after the rest but before Settings.
	Raw map[string]string
	// Settings are the limits and further devices, which Apply can change later.
	Settings Settings
}

// Create defines a container named name on cc.Rootfs; it does not start it.
func (m *Manager) Create(ctx context.Context, name string, cc CreateConfig) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if m.Exists(name) {
		return fmt.Errorf("%s: %w", name, ErrExists)
	}
	rootfs, err := checkRootfs(cc.Rootfs)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	cc.Rootfs = rootfs
	tmp, err := os.CreateTemp(m.cfg.LXCPath, "."+name+"-config-*")
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(m.render(name, cc)); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: writing config: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: writing config: %w", name, err)
	}
	ctx, cancel := m.withTimeout(ctx)
	defer cancel()
	_, err = m.run(ctx, call{tool: "lxc-create", name: name,
		args: m.args(name, "-t", "none", "-f", tmp.Name(), "-B", "dir", "--dir", rootfs)})
	if err != nil {
		os.RemoveAll(m.dir(name)) // lxc-create may leave a half-made directory
		return err
	}
	return nil
}

// checkRootfs makes path absolute and checks it is a directory.
func checkRootfs(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("rootfs: no directory given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("rootfs %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("rootfs %s: not a directory", abs)
	}
	if err := os.MkdirAll(filepath.Join(abs, "dev", "pts"), 0o755); err != nil {
		return "", fmt.Errorf("rootfs: %w", err)
	}
	return abs, nil
}

// render returns the container's LXC configuration.
func (m *Manager) render(name string, cc CreateConfig) string {
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	b.WriteString("# Written by orch (modules/lxc).\n")
	kv("lxc.rootfs.path", "dir:"+cc.Rootfs)
	kv("lxc.uts.name", name)
	kv("lxc.arch", "linux64")
	kv("lxc.autodev", "1")
	kv("lxc.pty.max", "16")
	kv("lxc.tty.max", "0")
	kv("lxc.signal.halt", "SIGUSR1")
	kv("lxc.signal.reboot", "SIGTERM")
	kv("lxc.apparmor.profile", "unconfined")
	kv("lxc.cap.drop", "sys_module mac_admin mac_override sys_time")
	kv("lxc.mount.auto", "cgroup:mixed proc:mixed sys:ro")
	kv("lxc.mount.entry", "shm dev/shm tmpfs defaults,create=dir 0 0")
	// Per-agent cgroup names: the same container name on two agents of one machine would
	// otherwise collide at the top of the hierarchy (LXC then renames one NAME-1).
	cg := sanitize(m.cfg.CgroupPrefix) + "-" + name
	kv("lxc.cgroup.dir.container", "lxc.payload."+cg)
	kv("lxc.cgroup.dir.monitor", "lxc.monitor."+cg)
	kv("lxc.log.file", m.logPath(name))
	kv("lxc.log.level", "WARN")
	if cc.Bridge != "" {
		kv("lxc.net.0.type", "veth")
		kv("lxc.net.0.link", cc.Bridge)
		kv("lxc.net.0.flags", "up")
		kv("lxc.net.0.name", "eth0")
		if cc.HWAddr != "" {
			kv("lxc.net.0.hwaddr", cc.HWAddr)
		}
		if cc.MTU > 0 {
			kv("lxc.net.0.mtu", fmt.Sprint(cc.MTU))
		}
		if cc.IPv4 != "" {
			kv("lxc.net.0.ipv4.address", cc.IPv4)
			if cc.IPv4Gateway != "" {
				kv("lxc.net.0.ipv4.gateway", cc.IPv4Gateway)
			}
		}
	}
	keys := make([]string, 0, len(cc.Raw))
	for k := range cc.Raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kv(k, cc.Raw[k])
	}
	b.WriteString(settingsMarker)
	b.WriteString(m.renderSettings(name, cc.Settings))
	b.WriteString(settingsEnd)
	return b.String()
}

// sanitize keeps letters, digits, '-' and '_' of s (for a cgroup name element).
func sanitize(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return "orch"
	}
	return string(out)
}

// Rootfs returns the directory holding the container's root filesystem.
func (m *Manager) Rootfs(name string) (string, error) {
	if err := m.need(name); err != nil {
		return "", err
	}
	b, err := os.ReadFile(m.configPath(name))
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == "lxc.rootfs.path" {
			v = strings.TrimSpace(v)
			v = strings.TrimPrefix(v, "dir:")
			return v, nil
		}
	}
	return "", fmt.Errorf("%s: %s has no lxc.rootfs.path", name, m.configPath(name))
}
