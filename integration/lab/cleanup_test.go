package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// createLab makes a lab with Create (not New), for tests of Close, Load and Sweep.
func createLab(t *testing.T, pattern string, n int) *Lab {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	return createLabIn(t, dir, n)
}

func createLabIn(t *testing.T, dir string, n int) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	l, err := Create(ctx, dir, n, WithLogger(testLogger(t)))
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		os.RemoveAll(dir)
	})
	return l
}

// startStragglers starts processes that try to outlive their host: a daemon in its own
// session through SSH, one through Exec, and one in a new network namespace (as an LXC
// container's init would be). It returns every PID in the lab's hosts.
func startStragglers(t *testing.T, l *Lab) []int {
	t.Helper()
	var pids []int
	for _, h := range l.Hosts() {
		mustSSH(t, l, h.Name, "setsid sleep 1001 </dev/null >/dev/null 2>&1 &")
		if _, err := h.Exec(t.Context(), "sh", "-c", "setsid sleep 1002 </dev/null >/dev/null 2>&1 &"); err != nil {
			t.Fatal(err)
		}
		mustSSH(t, l, h.Name, "unshare --net --fork setsid sleep 1003 </dev/null >/dev/null 2>&1 &")
		h.mu.Lock()
		members, _, err := findLive(h.members)
		h.mu.Unlock()
		if err != nil || len(members) < 3 {
			t.Fatalf("%s: processes %v, %v", h.Name, members, err)
		}
		pids = append(pids, members...)
	}
	return pids
}

// assertGone checks that nothing of the lab is left: processes, netns, links, mounts,
// cgroups, state file.
func assertGone(t *testing.T, st state, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if p, ok := readProc(pid); ok && p.state != 'Z' {
			t.Errorf("process %d (%s) still alive", pid, p.comm)
		}
	}
	names := []string{st.Bridge}
	for _, h := range st.Hosts {
		if _, err := os.Stat(filepath.Join(netnsDir, h.Netns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("netns %s left: %v", h.Netns, err)
		}
		names = append(names, h.Veth)
	}
	for _, name := range names {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("link %s left", name)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, st.Dir) || strings.Contains(line, namePrefix+st.ID) {
			t.Errorf("mount left: %s", line)
		}
	}
	if st.Cgroup != "" {
		if _, err := os.Stat(st.Cgroup); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left: %v", st.Cgroup, err)
		}
	}
	if _, err := os.Stat(filepath.Join(st.Dir, stateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left: %v", err)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	l := createLab(t, "orch-lab-test-", 2)
	pids := startStragglers(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, l.st, pids)
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLoadAndClose is what `orchlab down` does after the process that made the lab died.
func TestLoadAndClose(t *testing.T) {
	l := createLab(t, "orch-lab-test-", 2)
	loaded, err := Load(l.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if got := loaded.Hosts(); len(got) != 2 || got[1].Name != "host2" || got[1].Addr != l.Hosts()[1].Addr {
		t.Fatalf("loaded hosts: %+v", got)
	}
	h := loaded.Hosts()[0]
	if out, err := h.Exec(t.Context(), "hostname"); err != nil || strings.TrimSpace(string(out)) != "host1" {
		t.Errorf("Exec on a loaded lab: %q, %v", out, err)
	}
	pids := startStragglers(t, l)
	if err := loaded.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, l.st, pids)
	if _, err := Load(l.Dir()); !errors.Is(err, ErrNoState) {
		t.Errorf("Load after Close: %v, want ErrNoState", err)
	}
}

func TestSweep(t *testing.T) {
	withState := createLab(t, "orch-lab-sweeptest-", 1)
	lost := createLab(t, "orch-lab-sweeptest-", 1)
	pids := append(startStragglers(t, withState), startStragglers(t, lost)...)
	if err := os.Remove(filepath.Join(lost.Dir(), stateFile)); err != nil {
		t.Fatal(err)
	}
	if err := Sweep(withState.Dir(), namePrefix+withState.ID()); err != nil {
		t.Fatal(err)
	}
	if err := Sweep(withState.Dir(), namePrefix+lost.ID()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, withState.st, pids)
	assertGone(t, lost.st, nil)
	if _, err := os.Stat(withState.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("swept lab's directory left: %v", err)
	}
}

func TestSweepOrphans(t *testing.T) {
	Require(t)
	parent, err := os.MkdirTemp("", "orch-lab-sweeptest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	orphan := createLabIn(t, filepath.Join(parent, "orphan"), 1)
	live := createLabIn(t, filepath.Join(parent, "live"), 1)
	dead := self()
	dead.Start++ // same PID, other start time: a process that no longer runs
	for l, o := range map[*Lab]*owner{orphan: dead, live: self()} {
		l.st.Ephemeral = true
		if err := l.setOwner(o); err != nil {
			t.Fatal(err)
		}
	}
	if err := SweepOrphans(filepath.Join(parent, "*")); err != nil {
		t.Fatal(err)
	}
	assertGone(t, orphan.st, nil)
	if _, err := os.Stat(orphan.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan lab's directory left: %v", err)
	}
	if !live.Hosts()[0].Running() {
		t.Error("SweepOrphans removed the lab of a running test")
	}
}
