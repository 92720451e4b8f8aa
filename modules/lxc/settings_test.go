package lxc

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSettings makes a container with a memory limit, changes its limits while it runs
// (the cgroup shows each at once, lifting one restores the host's value), refuses a device
// change while it runs (the config unchanged), then adds a bind-mounted directory and a
// second interface while it is stopped and finds both inside after a start.
func TestSettings(t *testing.T) {
	needLXC(t)
	if _, err := os.Stat("/usr/bin/lxc-cgroup"); err != nil {
		t.Skip("no lxc-cgroup: install lxc")
	}
	m := newTestManager(t, "lxcset")
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

	before, err := os.ReadFile(m.configPath("c1"))
	must(t, err)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "hello"), []byte("from the host\n"), 0o644))
	devices := Settings{Limits: Limits{Memory: 96 << 20}, Disks: []Disk{{Source: src, Path: "/srv/data", ReadOnly: true}},
		NICs: []NIC{{Name: "eth1", Bridge: br}}}
	if err := m.Apply(c, "c1", devices); !errors.Is(err, ErrRunning) {
		t.Fatalf("devices on a running container: %v, want ErrRunning", err)
	}
	after, err := os.ReadFile(m.configPath("c1"))
	must(t, err)
	if !bytes.Equal(before, after) {
		t.Fatalf("a refused change rewrote the config:\n%s\n---\n%s", before, after)
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
