package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netns is a private network namespace with only loopback, held open by a sleeping
// process. Cluster daemons (orch's and LXD's) run in it on 127.x addresses of their own,
// so they never clash with other tests' ports and nothing they try reaches the outside
// (LXD looks up images.linuxcontainers.org at start; here that fails at once).
type netns struct{ holder *exec.Cmd }

// newNetns starts the holder; cleanup kills it by PID.
func newNetns(b testing.TB) *netns {
	b.Helper()
	cmd := exec.Command("unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep 100000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("unshare --net: %v", err)
	}
	n := &netns{holder: cmd}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if _, err := waitFor(5*time.Second, "the bench netns's loopback", func() error {
		out, err := n.command("ip", "-o", "addr", "show", "lo").Output()
		if err != nil || !strings.Contains(string(out), "127.0.0.1") {
			return fmt.Errorf("lo not up: %v %s", err, out)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return n
}

// command is a command that runs inside the namespace (nsenter execs it: same PID).
func (n *netns) command(name string, args ...string) *exec.Cmd {
	full := append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", n.holder.Process.Pid), "--", name}, args...)
	return exec.Command("nsenter", full...)
}

// unmountUnder lazily unmounts whatever a killed daemon left mounted below dir.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], filepath.Clean(dir)+"/") {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}
