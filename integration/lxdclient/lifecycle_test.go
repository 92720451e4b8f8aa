package lxdclient

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"orch/internal/syncbuf"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
)

// TestInstanceLifecycleWithLXC drives an instance's life with the real client through a member
// that does not own it: start/stop/restart wait for their operation and print nothing
// (no "websocket: bad handshake"), exec runs non-interactively (-T: separate stdin, stdout,
// stderr websockets) and interactively under a pty (one websocket and a terminal), exit
// codes come back, and delete removes it.
func TestInstanceLifecycleWithLXC(t *testing.T) {
	NeedLXC(t)
	ms := instanceCluster(t)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])

	ms[1].MustRun("launch", "busybox", "c1", "--target", "node3")
	for _, step := range []struct{ action, status string }{
		{"stop", api.InstanceStopped}, {"start", api.InstanceRunning}, {"restart", api.InstanceRunning},
	} {
		r := c.Run(step.action, "c1")
		if r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
			t.Fatalf("%s", r)
		}
		if got := status(t, ms[1], "c1"); got != step.status {
			t.Fatalf("after lxc %s c1: %s, want %s", step.action, got, step.status)
		}
	}

	r := c.RunInput("from stdin\n", "exec", "c1", "-T", "--", "sh", "-c", "cat; echo to-stderr >&2; hostname; exit 3")
	if r.Code != 3 || r.Stdout != "from stdin\nc1\n" || r.Stderr != "to-stderr\n" {
		t.Fatalf("non-interactive exec: %s", r)
	}
	if r := c.Run("exec", "c1", "--", "hostname"); r.Code != 0 || r.Stdout != "c1\n" {
		t.Fatalf("exec without a terminal on stdin: %s", r)
	}
	// --user/--group/--cwd as LXD's exec: busybox id prints the numbers (no such names).
	if r := c.Run("exec", "c1", "-T", "--user", "1000", "--group", "1001", "--cwd", "/tmp", "--", "sh", "-c", "id -u; id -g; pwd"); r.Code != 0 || r.Stdout != "1000\n1001\n/tmp\n" {
		t.Fatalf("exec --user 1000 --group 1001 --cwd /tmp: %s", r)
	}
	out, code := underPTY(t, c, "exec c1 -- sh -c 'tty; echo on-a-terminal; exit 4'")
	if code != 4 || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "on-a-terminal") {
		t.Fatalf("interactive exec under a pty: exit %d, output %q", code, out)
	}

	checkWindow(t, c, "c1")
	checkSignal(t, c, "c1")

	c.WantFailure([]string{"delete", "c1"}, "stop it first")
	c.MustRun("stop", "c1", "--force")
	// A start that fails on the owner comes back as a failed operation with its error.
	must(t, os.Remove(initOf(t, ms[2], "c1")))
	c.WantFailure([]string{"start", "c1"}, "lxc-start")
	if got := status(t, ms[0], "c1"); got != api.InstanceStopped {
		t.Fatalf("after a failed start: %s", got)
	}
	if r := c.Run("delete", "c1"); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Fatalf("%s", r)
	}
	if _, err := ms[2].Client().Instance(context.Background(), "c1"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("c1 after lxc delete: %v", err)
	}

	// lxc launch --target through node1: created (an operation) on node2, then started.
	if out := c.MustRun("launch", "busybox", "c2", "--target", "node2"); out != "Creating c2\nStarting c2\n" {
		t.Fatalf("lxc launch printed %q", out)
	}
	if in, err := ms[2].Client().Instance(context.Background(), "c2"); err != nil || in.Location != "node2" || in.Status != api.InstanceRunning {
		t.Fatalf("c2 after lxc launch --target node2: %+v %v", in, err)
	}
	c.MustRun("delete", "c2", "--force")

	// pylxd through node3: an instance created (waiting for its operation) and started.
	r = c.Python(ms[2], pylxdCreateAndStart)
	if r.Code != 0 || r.Stdout != "Stopped\nRunning node1\n" {
		t.Fatalf("pylxd: %s", r)
	}
	if got := status(t, ms[0], "py1"); got != api.InstanceRunning {
		t.Fatalf("py1 after pylxd start: %s", got)
	}
}

// pylxdCreateAndStart creates py1 on node1 from the busybox alias, waits, prints its
// status, starts it, waits and prints its status and location.
const pylxdCreateAndStart = `
import os, pylxd
c = pylxd.Client(endpoint=os.environ["LXD_URL"], cert=(os.environ["LXD_CERT"], os.environ["LXD_KEY"]), verify=False)
i = c.containers.create({"name": "py1", "source": {"type": "image", "alias": "busybox"}}, wait=True, target="node1")
print(i.status)
i.start(wait=True)
i.sync()
print(i.status, i.location)
`

// checkWindow runs an interactive `lxc exec` on a terminal of 100x30 whose command
// prints its terminal's size, waits for a line, and prints it again after the terminal was
// made 120x40 (the kernel tells lxc with SIGWINCH; lxc sends window-resize on the control
// websocket).
func checkWindow(t *testing.T, c *LXC, name string) {
	t.Helper()
	// The size is printed again at every line read: the resize and the line travel on two
	// websockets (control and stdin), so a line may overtake the resize; nudging again
	// until the new size shows tolerates that, and EOF (^D) ends the loop.
	cmd := exec.Command(LXCBin, "exec", name, "--", "sh", "-c", "stty size; while read x; do stty size; done")
	cmd.Env = c.Env()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	out := &syncbuf.Buffer{}
	go func() { _, _ = io.Copy(out, tty) }()
	waitFor(t, out, "30 100", nil)
	must(t, pty.Setsize(tty, &pty.Winsize{Rows: 40, Cols: 120}))
	_, _ = tty.Write([]byte("\r"))
	waitFor(t, out, "40 120", func() { _, _ = tty.Write([]byte("\r")) })
	_, _ = tty.Write([]byte("\x04"))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("lxc exec on a terminal: %v; it showed %q", err, out)
	}
}

// checkSignal sends SIGTERM to a non-interactive `lxc exec`, which forwards it on the
// control websocket to the command (its trap answers and sets the exit code).
func checkSignal(t *testing.T, c *LXC, name string) {
	t.Helper()
	cmd := exec.Command(LXCBin, "exec", name, "-T", "--", "sh", "-c", `trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done`)
	cmd.Env = c.Env()
	out := &syncbuf.Buffer{}
	cmd.Stdout = out
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitFor(t, out, "ready", nil)
	must(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("lxc exec still runs 20s after SIGTERM (the signal did not reach the command): %q", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || out.String() != "ready\ngot-term\n" {
		t.Fatalf("lxc exec after SIGTERM: %v, output %q (want exit 7 and got-term)", err, out)
	}
}

// initOf is the path of an instance's /sbin/init on its member a.
func initOf(t *testing.T, a *agenttest.Agent, name string) string {
	t.Helper()
	var found string
	_ = filepath.WalkDir(a.Dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && found == "" && strings.HasSuffix(p, "/sbin/init") && strings.Contains(p, "/"+name+"/") {
			found = p
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no /sbin/init of %s under %s", name, a.Dir)
	}
	return found
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// status is an instance's status as the cluster reports it through a.
func status(t *testing.T, a *agenttest.Agent, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := a.Client().Instance(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return in.Status
}

// underPTY runs `lxc args` on a pseudo terminal (script(1)), which makes lxc interactive,
// and returns what the terminal showed and lxc's exit code.
func underPTY(t *testing.T, c *LXC, args string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec", LXCBin+" "+args, "/dev/null")
	cmd.Env = c.Env()
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("lxc %s under a pty: no answer within %v: %q", args, Deadline, out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}
