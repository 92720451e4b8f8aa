package lab

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"orch/internal/wait"
)

// TestKillReachesChildrenOutsideTheHost: a host's process has a child in another network
// namespace and cgroup, as LXC's monitor has the container's init (its own netns, its
// payload cgroup): the child is a member of the host only as its parent's descendant.
// Kill's cgroup.kill takes the parent first; the child must still be killed and be dead
// when Kill returns. It was found no more once its parent was gone (nobody's descendant
// in the host) and left running: the container's init "survived Kill" until LXC's
// parent-death signal killed it a moment later (TestLXCContainerDiesWithHost, under load).
func TestKillReachesChildrenOutsideTheHost(t *testing.T) {
	l := New(t, 1)
	h := l.Hosts()[0]
	if h.cg == "" {
		t.Skip("needs cgroup v2")
	}
	mustSSH(t, l, h.Name, "nohup sh -c 'unshare --net sleep 4243 & wait' </dev/null >/dev/null 2>&1 &")
	var child int
	wait.For(t, 10*time.Second, "the child in its own network namespace", func() error {
		child = findByCmdline("sleep\x004243\x00")
		if child == 0 {
			return fmt.Errorf("no sleep 4243 yet")
		}
		return nil
	})
	outside, err := newCgroup("orch-lab", l.st.ID+"-outside")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = killAll("outside", outside.procs)
		_ = outside.remove()
	})
	if err := outside.write("cgroup.procs", strconv.Itoa(child)); err != nil {
		t.Fatal(err)
	}
	if err := h.Kill(); err != nil {
		t.Fatal(err)
	}
	if p, ok := readProc(child); ok && !p.dead() {
		t.Errorf("%s's process %d (%s), in its own network namespace and cgroup, survived Kill", h.Name, child, p.comm)
	}
}

// findByCmdline returns the PID of a process whose command line is cmdline (NUL-separated
// arguments), 0 if none.
func findByCmdline(cmdline string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Equal(b, []byte(cmdline)) {
			return pid
		}
	}
	return 0
}
