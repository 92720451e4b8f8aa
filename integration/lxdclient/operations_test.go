package lxdclient

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"orch/internal/syncbuf"
	"orch/internal/wait"
)

// TestOperationListAndMonitor: a token operation started through node2 runs on the leader
// (node1) and `lxc operation list` through node3 lists it with its member; `lxc monitor`
// connected to node2 receives the lifecycle event of a token issued through node3 (which
// the leader publishes), of a profile created through node3 and of a member removal (once),
// `--type=operation` the operation's own events and `--type=logging` the leader's log line.
func TestOperationListAndMonitor(t *testing.T) {
	NeedLXC(t)
	ms := StartCluster(t, 3)
	via2, via3 := NewLXC(t), NewLXC(t)
	via2.AddRemoteTrusted("orch", ms[1])
	via3.AddRemoteTrusted("orch", ms[2])

	printedToken(t, via2.MustRun("cluster", "add", "spare1"), "spare1")
	out := via3.MustRun("operation", "list")
	for _, want := range []string{"TOKEN", "RUNNING", "node1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("lxc operation list through node3 has no %q:\n%s", want, out)
		}
	}
	id := operationID(t, out)
	show := via2.MustRun("operation", "show", id)
	for _, want := range []string{"id: " + id, "class: token", "serverName: spare1", "location: node1"} {
		if !strings.Contains(show, want) {
			t.Fatalf("lxc operation show %s through node2 has no %q:\n%s", id, want, show)
		}
	}
	// The agent's own CLI (the command tree orch mounts too) sees the same.
	if out := ms[2].MustRun("operation", "list"); !strings.Contains(out, id) || !strings.Contains(out, "node1") {
		t.Fatalf("nodeagent operation list on node3:\n%s", out)
	}
	if out := ms[1].MustRun("operation", "show", id); !strings.Contains(out, "location: node1") || !strings.Contains(out, "class: token") {
		t.Fatalf("nodeagent operation show on node2:\n%s", out)
	}
	via3.MustRun("operation", "delete", id)
	if out := via2.MustRun("operation", "list"); strings.Contains(out, id) && strings.Contains(out, "RUNNING") {
		t.Fatalf("after lxc operation delete %s:\n%s", id, out)
	}

	lifecycle := monitor(t, via2, "--type=lifecycle")
	ops := monitor(t, via2, "--type=operation")
	logs := monitor(t, via2, "--type=logging")
	n := 0
	poke := func() {
		n++
		ms[2].MustRun("cluster", "add", fmt.Sprintf("poke%d", n))
	}
	waitFor(t, lifecycle, "action: cluster-token-created", poke)
	waitFor(t, lifecycle, "location: node1", nil)
	waitFor(t, ops, "class: token", nil)
	ms[2].MustRun("profile", "create", "watched")
	waitFor(t, lifecycle, "action: profile-created", nil)
	waitFor(t, lifecycle, "source: /1.0/profiles/watched", nil)
	ms[1].MustRun("cluster", "remove", "node3")
	waitFor(t, lifecycle, "source: /1.0/cluster/members/node3", nil)
	waitFor(t, logs, "message: member removed", nil)
	waitFor(t, logs, "member: node3", nil)
	ms[1].MustRun("profile", "create", "after") // node2's own events arrive in order: a duplicate would be before it
	waitFor(t, lifecycle, "source: /1.0/profiles/after", nil)
	if n := strings.Count(lifecycle.String(), "action: cluster-member-removed"); n != 1 {
		t.Fatalf("lxc monitor printed %d cluster-member-removed events, want 1 (the request came through node2, which forwards it to the leader):\n%s", n, lifecycle)
	}
	if strings.Contains(lifecycle.String(), "class: token") {
		t.Fatalf("lxc monitor --type=lifecycle got an operation event:\n%s", lifecycle)
	}
}

// operationID is the id of the first RUNNING operation row of `lxc operation list`.
func operationID(t *testing.T, table string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if !strings.Contains(line, "RUNNING") {
			continue
		}
		f := strings.Fields(strings.Trim(line, "|"))
		if len(f) > 1 && len(f[0]) == 36 && strings.Count(f[0], "-") == 4 {
			return f[0]
		}
	}
	t.Fatalf("no operation id in:\n%s", table)
	return ""
}

// monitor runs `lxc monitor args...` until the test ends and returns its output.
func monitor(t *testing.T, c *LXC, args ...string) *syncbuf.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, LXCBin, append([]string{"monitor"}, args...)...)
	cmd.Env = c.Env()
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return out
}

// waitFor waits for want in out, calling poke (when set) between looks.
func waitFor(t *testing.T, out *syncbuf.Buffer, want string, poke func()) {
	t.Helper()
	wait.ForEvery(t, 20*time.Second, 500*time.Millisecond, fmt.Sprintf("lxc monitor to print %q", want), func() error {
		if got := out.String(); !strings.Contains(got, want) {
			if poke != nil {
				poke()
			}
			return fmt.Errorf("lxc monitor printed %q", got)
		}
		return nil
	})
}
