package lxc

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Disks reach a running container through a shared mount, as LXD's shmounts: each
// container has a directory of its own (shmountsDir) that is a shared mount on the host,
// bind-mounted at /dev/.orch-mounts in the container (the settings block's first line), so
// that a mount made under it on the host appears in the container. Adding a disk mounts
// its source there, has the container bind it at its path (lxc-attach, the container's own
// mount, made private so that it outlives the host's), then unmounts the host's; removing
// one unmounts it in the container (lazily, as LXD). A container started before it had the
// line cannot take disks while it runs (ErrRunning: stop it first).

// shmountsInside is where a container sees its shmounts directory.
const shmountsInside = "/dev/.orch-mounts"

// shmountsDir is the container's shmounts directory on the host.
func (m *Manager) shmountsDir(name string) string { return filepath.Join(m.dir(name), "shmounts") }

// shmountsEntry is the LXC mount entry of the shmounts directory.
func (m *Manager) shmountsEntry(name string) string {
	return fmt.Sprintf("%s %s none bind,create=dir 0 0", escapeMount(m.shmountsDir(name)), strings.TrimPrefix(shmountsInside, "/"))
}

// ensureShmounts makes the shmounts directory a shared mount of itself (once per boot of
// the host: the mount does not outlive it).
func (m *Manager) ensureShmounts(name string) error {
	dir := m.shmountsDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if isMountPoint(dir) {
		return nil
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("%s: bind-mounting %s: %w", name, dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		return fmt.Errorf("%s: sharing %s: %w", name, dir, err)
	}
	return nil
}

// releaseShmounts unmounts everything under the shmounts directory and the directory
// itself, and fails if a mount is left: deleting the container's directory must never
// reach into a disk's source.
func (m *Manager) releaseShmounts(name string) error {
	if err := UnmountAll(m.shmountsDir(name)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// UnmountAll lazily unmounts every mount at or under dir, deepest first, and fails naming
// those left: removing dir then cannot reach into what was mounted there.
func UnmountAll(dir string) error {
	for range 8 {
		mounts := mountsUnder(dir)
		if len(mounts) == 0 {
			return nil
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
		}
	}
	return fmt.Errorf("mounts left under %s: %s", dir, strings.Join(mountsUnder(dir), ", "))
}

// isMountPoint reports whether dir is a mount point of this mount namespace.
func isMountPoint(dir string) bool {
	for _, p := range mountsUnder(dir) {
		if p == dir {
			return true
		}
	}
	return false
}

// mountsUnder lists the mount points at or under dir, in mount order.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountinfo(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// canHotplug reports whether the running container was started with its shmounts
// directory (it sees it at shmountsInside).
func (m *Manager) canHotplug(ctx context.Context, name string) bool {
	in, err := m.Info(ctx, name)
	if err != nil || in.PID <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", in.PID))
	return err == nil && strings.Contains(string(b), " "+shmountsInside+" ")
}

// hotplugDisks gives a running container the disks of next it lacks and takes away those
// of cur next lacks (a disk whose source or mode changed is taken away and given again).
// On a failure the disks it gave are taken away again.
func (m *Manager) hotplugDisks(ctx context.Context, name string, cur, next []Disk) error {
	return hotplug(ctx, cur, next,
		func(ctx context.Context, d Disk) error { return m.plugDisk(ctx, name, d) },
		func(ctx context.Context, d Disk) error { return m.unplugDisk(ctx, name, d) })
}

// hotplug takes away the devices of cur that next lacks, then gives those of next that cur
// lacks; when giving one fails, those it gave are taken away again.
func hotplug[T comparable](ctx context.Context, cur, next []T, plug, unplug func(context.Context, T) error) error {
	for _, d := range cur {
		if !slices.Contains(next, d) {
			if err := unplug(ctx, d); err != nil {
				return err
			}
		}
	}
	var added []T
	for _, d := range next {
		if slices.Contains(cur, d) {
			continue
		}
		if err := plug(ctx, d); err != nil {
			for _, done := range added {
				_ = unplug(context.WithoutCancel(ctx), done)
			}
			return err
		}
		added = append(added, d)
	}
	return nil
}

// plugDisk mounts d in the running container.
func (m *Manager) plugDisk(ctx context.Context, name string, d Disk) error {
	if err := m.ensureShmounts(name); err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	slot := "d" + hex.EncodeToString(rnd[:])
	host := filepath.Join(m.shmountsDir(name), slot)
	mk := func() error { return os.Mkdir(host, 0o700) }
	if d.File {
		mk = func() error { return os.WriteFile(host, nil, 0o600) }
	}
	if err := mk(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer os.Remove(host)
	if err := unix.Mount(d.Source, host, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("%s: mounting %s: %w", name, d.Source, err)
	}
	defer func() { _ = unix.Unmount(host, unix.MNT_DETACH) }()
	// In the container: make the target, bind the shared slot onto it, make the copy private
	// (it then survives the host's unmount), read-only if asked.
	script := `set -e
if [ "$3" = file ]; then mkdir -p "$(dirname "$1")"; [ -e "$1" ] || : > "$1"; else mkdir -p "$1"; fi
mount --bind "$2" "$1"
mount --make-private "$1"
if [ "$4" = ro ]; then mount -o remount,bind,ro "$1"; fi`
	kind, mode := "dir", "rw"
	if d.File {
		kind = "file"
	}
	if d.ReadOnly {
		mode = "ro"
	}
	code, err := m.Exec(ctx, name, []string{"sh", "-c", script, "sh", d.Path, shmountsInside + "/" + slot, kind, mode}, nil, nil, nil, ExecOptions{})
	if err == nil && code != 0 {
		err = fmt.Errorf("mount in the container exited %d (it needs sh and mount)", code)
	}
	if err != nil {
		return fmt.Errorf("%s: adding %s at %s: %w", name, d.Source, d.Path, err)
	}
	return nil
}

// unplugDisk unmounts d's path in the running container (lazily, as LXD).
func (m *Manager) unplugDisk(ctx context.Context, name string, d Disk) error {
	code, err := m.Exec(ctx, name, []string{"sh", "-c", `umount -l "$1" 2>/dev/null || ! grep -q " $1 " /proc/self/mountinfo`, "sh", d.Path}, nil, nil, nil, ExecOptions{})
	if err == nil && code != 0 {
		err = fmt.Errorf("umount in the container exited %d", code)
	}
	if err != nil {
		return fmt.Errorf("%s: removing the disk at %s: %w", name, d.Path, err)
	}
	return nil
}

// hotplugNICs gives a running container the interfaces of next it lacks and takes away
// those of cur next lacks (one whose bridge, address or MTU changed is taken away and given
// again), undoing the interfaces it gave on a failure.
func (m *Manager) hotplugNICs(ctx context.Context, name string, cur, next []NIC) error {
	return hotplug(ctx, cur, next,
		func(ctx context.Context, n NIC) error { return m.plugNIC(ctx, name, n) },
		func(ctx context.Context, n NIC) error { return m.unplugNIC(ctx, name, n) })
}

// plugNIC makes a veth pair, puts the host end on n's bridge, moves the other end into the
// running container's network namespace (netlink; lxc-device needs the host's PID 1
// namespace) and names it and sets it up there.
func (m *Manager) plugNIC(ctx context.Context, name string, n NIC) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("%s: bridge %s of %s: %w", name, n.Bridge, n.Name, err)
	}
	var rnd [5]byte
	_, _ = rand.Read(rnd[:])
	host, peer := "vo"+hex.EncodeToString(rnd[:]), "vp"+hex.EncodeToString(rnd[:])
	attrs := netlink.LinkAttrs{Name: host, MTU: n.MTU}
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peer}
	if n.HWAddr != "" {
		mac, err := net.ParseMAC(n.HWAddr)
		if err != nil {
			return fmt.Errorf("%s: %s: hwaddr %q: %w", name, n.Name, n.HWAddr, err)
		}
		veth.PeerHardwareAddr = mac
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("%s: veth for %s: %w", name, n.Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = netlink.LinkDel(veth)
		}
	}()
	if err := netlink.LinkSetMaster(veth, br); err != nil {
		return fmt.Errorf("%s: %s on bridge %s: %w", name, n.Name, n.Bridge, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return fmt.Errorf("%s: %s up: %w", name, host, err)
	}
	in, err := m.Info(ctx, name)
	if err != nil {
		return err
	}
	if in.PID <= 0 {
		return fmt.Errorf("%s: %w", name, ErrNotRunning)
	}
	peerLink, err := netlink.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", name, peer, err)
	}
	if err := netlink.LinkSetNsPid(peerLink, in.PID); err != nil {
		return fmt.Errorf("%s: moving %s into the container: %w", name, n.Name, err)
	}
	ok = true // the pair now dies with the container's network namespace
	if err := inContainerNetns(in.PID, func(h *netlink.Handle) error {
		l, err := h.LinkByName(peer)
		if err != nil {
			return err
		}
		if err := h.LinkSetName(l, n.Name); err != nil {
			return err
		}
		return h.LinkSetUp(l)
	}); err != nil {
		_ = netlink.LinkDel(veth)
		return fmt.Errorf("%s: %s in the container: %w", name, n.Name, err)
	}
	return nil
}

// inContainerNetns runs f with a netlink handle in the network namespace of process pid.
func inContainerNetns(pid int, f func(*netlink.Handle) error) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return f(h)
}

// unplugNIC deletes the interface in the container (its veth peer on the host goes with it).
func (m *Manager) unplugNIC(ctx context.Context, name string, n NIC) error {
	in, err := m.Info(ctx, name)
	if err != nil {
		return err
	}
	if in.PID <= 0 {
		return nil // stopped: the interface went with its network namespace
	}
	err = inContainerNetns(in.PID, func(h *netlink.Handle) error {
		l, err := h.LinkByName(n.Name)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil
			}
			return err
		}
		return h.LinkDel(l)
	})
	if err != nil {
		return fmt.Errorf("%s: removing %s: %w", name, n.Name, err)
	}
	return nil
}
