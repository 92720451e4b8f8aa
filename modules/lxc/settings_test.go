package lxc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteConfigKeepsMode: a rewritten config keeps the mode it had (lxc-create's, or an
// admin's), a new one is configPerm, and no temporary file is left beside it.
func TestWriteConfigKeepsMode(t *testing.T) {
	dir := t.TempDir()
	kept := filepath.Join(dir, "config")
	must(t, os.WriteFile(kept, []byte("old\n"), 0o600))
	must(t, os.Chmod(kept, 0o600))
	fresh := filepath.Join(dir, "fresh")
	for path, want := range map[string]os.FileMode{kept: 0o600, fresh: configPerm} {
		must(t, writeConfig(path, "lxc.uts.name = c1\n"))
		b, err := os.ReadFile(path)
		must(t, err)
		st, err := os.Stat(path)
		must(t, err)
		if string(b) != "lxc.uts.name = c1\n" || st.Mode() != want {
			t.Errorf("%s: %q, mode %v; want the new config, mode %v", path, b, st.Mode(), want)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 2 {
		t.Errorf("%s holds %d entries, want the 2 configs", dir, len(des))
	}
}

// TestDropRootfs: Destroy's config rewrite drops only the rootfs lines, keeps the
// config's mode, and leaves no temporary file in the container's directory.
func TestDropRootfs(t *testing.T) {
	m, err := New(Config{LXCPath: t.TempDir()})
	must(t, err)
	must(t, os.MkdirAll(m.dir("c1"), 0o750))
	path := m.configPath("c1")
	must(t, os.WriteFile(path, []byte("lxc.uts.name = c1\nlxc.rootfs.path = dir:/vol\nlxc.net.0.type = veth"), 0o600))
	must(t, os.Chmod(path, 0o600))
	must(t, m.dropRootfs("c1"))
	b, err := os.ReadFile(path)
	must(t, err)
	st, err := os.Stat(path)
	must(t, err)
	if string(b) != "lxc.uts.name = c1\nlxc.net.0.type = veth" || st.Mode() != 0o600 {
		t.Errorf("config after dropRootfs: %q, mode %v; want the rootfs line gone, mode 0600", b, st.Mode())
	}
	if des, _ := os.ReadDir(m.dir("c1")); len(des) != 1 {
		t.Errorf("%s holds %d entries, want the config only", m.dir("c1"), len(des))
	}
}

// TestSettings makes a container with a memory limit, changes its limits while it runs
// (the cgroup shows each at once, lifting one restores the host's value), fails a disk
// whose source is missing (the config unchanged), adds and removes an interface live, then
// adds a bind-mounted directory and a second interface while it is stopped and finds both
// inside after a start.
func TestSettings(t *testing.T) {
	needLXC(t)
	if _, err := os.Stat("/usr/bin/lxc-cgroup"); err != nil {
		t.Skip("no lxc-cgroup: install lxc")
	}
	m := newTestManager(t, fmt.Sprintf("lxcset%d", os.Getpid()%100000))
	br := testBridge(t)
	c := ctx(t)
	must(t, m.Create(c, "c1", CreateConfig{Rootfs: busyboxRootfs(t), Bridge: br,
		Settings: Settings{Limits: Limits{Memory: 64 << 20}}}))
	must(t, m.Start(c, "c1"))
	mem := cgroupKeys().memory
	cgroupIs(t, m, mem, strconv.Itoa(64<<20))

	must(t, m.Apply(c, "c1", Settings{Limits: Limits{Memory: 96 << 20, CPUs: "0", Processes: 50}}))
	cgroupIs(t, m, mem, strconv.Itoa(96<<20))
	cgroupIs(t, m, "cpuset.cpus", "0")
	cgroupIs(t, m, "pids.max", "50")

	// A disk whose source is missing fails the change and leaves the config as it was.
	before, err := os.ReadFile(m.configPath("c1"))
	must(t, err)
	missing := Settings{Limits: Limits{Memory: 96 << 20}, Disks: []Disk{{Source: "/nonexistent-orch-test", Path: "/srv/x"}}}
	if err := m.Apply(c, "c1", missing); err == nil {
		t.Fatal("a disk with a missing source was added")
	}
	after, err := os.ReadFile(m.configPath("c1"))
	must(t, err)
	if !bytes.Equal(before, after) {
		t.Fatalf("a failed change rewrote the config:\n%s\n---\n%s", before, after)
	}
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "hello"), []byte("from the host\n"), 0o644))
	devices := Settings{Limits: Limits{Memory: 96 << 20}, Disks: []Disk{{Source: src, Path: "/srv/data", ReadOnly: true}},
		NICs: []NIC{{Name: "eth1", Bridge: br, HWAddr: "00:16:3e:aa:bb:01"}}}
	// Interfaces live: eth1 appears on the bridge's side and inside, with its address.
	must(t, m.Apply(c, "c1", Settings{Limits: devices.Limits, NICs: devices.NICs}))
	var nic bytes.Buffer
	if _, err := m.Exec(c, "c1", []string{"sh", "-c", "cat /sys/class/net/eth1/address /sys/class/net/eth1/operstate"}, nil, &nic, nil, ExecOptions{}); err != nil || !strings.HasPrefix(nic.String(), "00:16:3e:aa:bb:01\n") {
		t.Fatalf("eth1 inside after adding it live: %q, %v", nic.String(), err)
	}
	must(t, m.Apply(c, "c1", Settings{Limits: devices.Limits}))
	nic.Reset()
	if _, err := m.Exec(c, "c1", []string{"sh", "-c", "ls /sys/class/net"}, nil, &nic, nil, ExecOptions{}); err != nil || strings.Contains(nic.String(), "eth1") {
		t.Fatalf("interfaces after removing eth1 live: %q, %v", nic.String(), err)
	}

	must(t, m.Apply(c, "c1", Settings{}))
	cgroupIs(t, m, "pids.max", "max")
	if v, err := m.CgroupValue(c, "c1", mem); err != nil || v == strconv.Itoa(96<<20) {
		t.Fatalf("memory limit after lifting it: %q, %v", v, err)
	}

	must(t, m.Stop(c, "c1", true))
	must(t, m.Apply(c, "c1", devices))
	must(t, m.Start(c, "c1"))
	cgroupIs(t, m, mem, strconv.Itoa(96<<20))
	var out bytes.Buffer
	code, err := m.Exec(c, "c1", []string{"sh", "-c", "cat /srv/data/hello; ip -o link show eth1 | grep -c eth1; if touch /srv/data/x 2>/dev/null; then echo writable; fi"},
		nil, &out, nil, ExecOptions{})
	must(t, err)
	if code != 0 || out.String() != "from the host\n1\n" {
		t.Fatalf("inside after the devices were added: exit %d, %q", code, out.String())
	}
}

// cgroupIs checks one cgroup file of the running c1.
func cgroupIs(t *testing.T, m *Manager, key, want string) {
	t.Helper()
	got, err := m.CgroupValue(ctx(t), "c1", key)
	must(t, err)
	if strings.TrimSpace(got) != want {
		t.Fatalf("%s = %q, want %q", key, got, want)
	}
}

// TestDiskHotplug adds a directory and a file to a running container, read-only and
// read-write (seen inside at once), changes one and takes both away again (gone inside);
// deleting the container leaves the sources untouched even with a slot left mounted.
func TestDiskHotplug(t *testing.T) {
	needLXC(t)
	m := newTestManager(t, fmt.Sprintf("lxchp%d", os.Getpid()%100000))
	c := ctx(t)
	must(t, m.Create(c, "c1", CreateConfig{Rootfs: busyboxRootfs(t)}))
	must(t, m.Start(c, "c1"))
	dir, file := t.TempDir(), filepath.Join(t.TempDir(), "conf")
	must(t, os.WriteFile(filepath.Join(dir, "hello"), []byte("from the host\n"), 0o644))
	must(t, os.WriteFile(file, []byte("k=v\n"), 0o644))
	inside := func(script string) string {
		t.Helper()
		var out bytes.Buffer
		if _, err := m.Exec(c, "c1", []string{"sh", "-c", script}, nil, &out, nil, ExecOptions{}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	probe := "cat /srv/data/hello /etc/app.conf 2>/dev/null; if touch /srv/data/w 2>/dev/null; then echo rw; fi"

	disks := []Disk{{Source: dir, Path: "/srv/data", ReadOnly: true}, {Source: file, Path: "/etc/app.conf", File: true}}
	must(t, m.Apply(c, "c1", Settings{Disks: disks}))
	if got := inside(probe); got != "from the host\nk=v\n" {
		t.Fatalf("after adding the disks live: %q", got)
	}
	disks[0].ReadOnly = false
	must(t, m.Apply(c, "c1", Settings{Disks: disks}))
	if got := inside(probe); got != "from the host\nk=v\nrw\n" {
		t.Fatalf("after making /srv/data writable: %q", got)
	}
	must(t, m.Apply(c, "c1", Settings{}))
	if got := inside("cat /srv/data/hello /etc/app.conf 2>/dev/null; grep -cE ' /srv/data | /etc/app.conf ' /proc/self/mountinfo"); got != "0\n" {
		t.Fatalf("after taking the disks away: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "w")); err != nil {
		t.Fatalf("the write through the writable disk did not reach the host: %v", err)
	}

	// A slot left mounted (an agent killed mid-change) must not let Delete reach the source.
	slot := filepath.Join(m.shmountsDir("c1"), "left")
	must(t, os.Mkdir(slot, 0o700))
	must(t, unix.Mount(dir, slot, "", unix.MS_BIND, ""))
	must(t, m.Delete(c, "c1", true))
	if _, err := os.Stat(filepath.Join(dir, "hello")); err != nil {
		t.Fatalf("deleting the container reached a disk's source: %v", err)
	}
}
