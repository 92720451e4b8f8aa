package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"orch/modules/lxc"
)

// TestLXCContainerDiesWithHost runs a busybox container in each of two hosts (same name:
// their /var/lib/lxc are separate), kills one host and checks that its container and the
// container's cgroups are gone while the other host's container runs on.
func TestLXCContainerDiesWithHost(t *testing.T) {
	for _, bin := range []string{"lxc-create", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: apt-get install lxc busybox-static", bin)
		}
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("needs the OpenSSH client: apt-get install openssh-client")
	}
	l := New(t, 2)
	l.LogFile("/var/log/lxc/c1.log")
	outs := make([]string, 2)
	err := parallel(l.Hosts(), func(h *Host) error { // lxc-create takes seconds: both hosts at once
		out, err := sshRun(t, l, h.Name, nil, "ip link add lxcbr0 type bridge && ip link set lxcbr0 up && "+
			"lxc-create -n c1 -t busybox >/dev/null && lxc-start -n c1 -l INFO -o /var/log/lxc/c1.log && lxc-info -n c1 -p -H")
		outs[h.st.Index-1] = out
		if err != nil {
			return fmt.Errorf("%s: %w: %s", h.Name, err, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for i, h := range l.Hosts() {
		pid, err := strconv.Atoi(outs[i])
		if err != nil {
			t.Fatalf("%s: container pid: %v", h.Name, err)
		}
		pids[h.Name] = pid
	}
	cgs := lxcCgroups([]int{pids["host1"]})
	if len(cgs) == 0 {
		t.Fatalf("no LXC cgroup found for host1's container")
	}
	if err := l.Hosts()[0].Kill(); err != nil {
		t.Fatal(err)
	}
	if p, ok := readProc(pids["host1"]); ok && !p.dead() {
		t.Errorf("host1's container init %d survived Kill", pids["host1"])
	}
	for _, m := range lxc.CgroupMounts() {
		for _, cg := range cgs {
			if _, err := os.Stat(filepath.Join(m, cg)); err == nil {
				t.Errorf("cgroup %s left after Kill", filepath.Join(m, cg))
			}
		}
	}
	if got := mustSSH(t, l, "host2", "lxc-info -n c1 -s"); !strings.Contains(got, "RUNNING") {
		t.Errorf("host2's container after killing host1: %s", got)
	}
}
