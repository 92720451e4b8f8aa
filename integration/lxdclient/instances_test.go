package lxdclient

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
)

// TestInstancesWithLXC drives an instance's life with the real client through a member
// that does not own it: start/stop/restart wait for their operation and print nothing
// (no "websocket: bad handshake"), exec runs non-interactively (-T: separate stdin, stdout,
// stderr websockets) and interactively under a pty (one websocket and a terminal), exit
// codes come back, and delete removes it.
func TestInstancesWithLXC(t *testing.T) {
	NeedLXC(t)
	agenttest.NeedLXC(t)
	bridge := agenttest.TestBridge(t, "lc")
	_, variants := agenttest.BusyboxTarballs(t, 1)
	ms := agenttest.FormInstanceCluster(t, 3, bridge)
	ms[0].MustRun("image", "import", variants[0], "--alias", "busybox")
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
	if r := c.Run("exec", "c1", "--", "cat", "/etc/variant"); r.Code != 0 || r.Stdout != "0" {
		t.Fatalf("exec without a terminal on stdin: %s", r)
	}
	out, code := underPTY(t, c, "exec c1 -- sh -c 'tty; echo on-a-terminal; exit 4'")
	if code != 4 || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "on-a-terminal") {
		t.Fatalf("interactive exec under a pty: exit %d, output %q", code, out)
	}

	c.WantFailure([]string{"delete", "c1"}, "stop it first")
	c.MustRun("stop", "c1", "--force")
	if r := c.Run("delete", "c1"); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Fatalf("%s", r)
	}
	if _, err := ms[2].Client().Instance(context.Background(), "c1"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("c1 after lxc delete: %v", err)
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
