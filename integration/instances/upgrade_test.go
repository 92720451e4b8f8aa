package instances

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestInstancesSurviveUpgrade restarts, one by one, the members of a three-member cluster
// on a newer build (tag schemav2). The member owning a running container goes first: the
// container keeps running with the same init PID while the agent is down, while the
// member is BLOCKED (other members list it RUNNING), and after every member is upgraded.
// A stopped container stays stopped: the agent neither stops containers when it shuts
// down nor starts them when it comes back.
func TestInstancesSurviveUpgrade(t *testing.T) {
	needLXC(t)
	binB := filepath.Join(t.TempDir(), "nodeagent-schemav2")
	if err := agenttest.BuildAgent(binB, "schemav2"); err != nil {
		t.Fatalf("building nodeagent with -tags schemav2: %v", err)
	}
	bridge := testBridge(t)
	xz, _ := busyboxTarballs(t, 0)
	ms := formInstanceCluster(t, 3, bridge)
	n1, n2, n3 := ms[0], ms[1], ms[2]
	n1.MustRun("image", "import", xz, "--alias", "busybox")
	n1.MustRun("launch", "busybox", "up1", "--target", n2.Name)
	n3.MustRun("launch", "busybox", "down1", "--target", n2.Name)
	n1.MustRun("stop", "down1")
	pid := lxcPID(t, n2, "up1")

	if code := n2.Stop(); code != 0 {
		t.Fatalf("%s exited %d on SIGTERM", n2.Name, code)
	}
	wantContainers(t, n2, pid, "agent stopped")
	n2.StartWith(binB)
	wait.For(t, 20*time.Second, n2.Name+" BLOCKED on the newer build", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, _, err := n2.Client().Server(ctx)
		if err != nil {
			return err
		}
		if !s.Environment.Blocked {
			return fmt.Errorf("not blocked: %+v", s.Environment)
		}
		return nil
	})
	wantContainers(t, n2, pid, "member blocked")
	if r := n2.Run("list"); r.Code == 0 || !strings.Contains(r.Stderr, "blocked") {
		t.Errorf("list on the blocked %s: exit %d %s", n2.Name, r.Code, r.Stderr)
	}
	for _, via := range []*agenttest.Agent{n1, n3} {
		if in := show(t, via, "up1"); in.Status != api.InstanceRunning || in.PID != pid || in.Location != n2.Name {
			t.Fatalf("%s shows up1 on the blocked %s as %+v; want RUNNING with pid %d", via.Name, n2.Name, in, pid)
		}
	}

	for _, a := range []*agenttest.Agent{n1, n3} {
		if code := a.Stop(); code != 0 {
			t.Fatalf("%s exited %d on SIGTERM", a.Name, code)
		}
		a.StartWith(binB)
	}
	wait.For(t, 30*time.Second, n2.Name+" serving after the last upgrade", func() error {
		if r := n2.Run("config", "set", "user.upgraded", "yes"); r.Code != 0 {
			return fmt.Errorf("config set: %s", r.Stderr)
		}
		return nil
	})
	wantContainers(t, n2, pid, "every member upgraded")
	byName := map[string]api.Instance{}
	for _, in := range list(t, n3) {
		byName[in.Name] = in
	}
	if in := byName["up1"]; in.Status != api.InstanceRunning || in.PID != pid {
		t.Fatalf("after the upgrade list shows up1 as %+v; want RUNNING with pid %d", in, pid)
	}
	if in := byName["down1"]; in.Status != api.InstanceStopped {
		t.Fatalf("after the upgrade list shows down1 as %+v; want STOPPED", in)
	}
	if out := n1.MustRun("exec", "up1", "--", "hostname"); out != "up1\n" {
		t.Fatalf("exec in up1 after the upgrade: %q", out)
	}
	if out := n3.MustRun("list"); !strings.Contains(out, "up1") || !strings.Contains(out, "RUNNING") || !strings.Contains(out, n2.Name) {
		t.Fatalf("list after the upgrade:\n%s", out)
	}
}

// wantContainers checks on a's host, with LXC's own tools, that up1 runs with init pid
// and down1 is stopped.
func wantContainers(t *testing.T, a *agenttest.Agent, pid int, when string) {
	t.Helper()
	if got := lxcPID(t, a, "up1"); got != pid {
		t.Fatalf("%s: up1's init is pid %d, was %d", when, got, pid)
	}
	if st := lxcState(t, a, "down1"); st != "STOPPED" {
		t.Fatalf("%s: down1 is %s, want STOPPED", when, st)
	}
}

// lxcPID is the init PID of a running container of a, from lxc-info (0 when stopped).
func lxcPID(t *testing.T, a *agenttest.Agent, name string) int {
	t.Helper()
	if st := lxcState(t, a, name); st != "RUNNING" {
		t.Fatalf("%s: %s is %s, want RUNNING", a.Name, name, st)
	}
	pid, err := strconv.Atoi(lxcInfo(t, a, name, "-p"))
	if err != nil || pid <= 0 {
		t.Fatalf("%s: pid of %s: %v", a.Name, name, err)
	}
	return pid
}

// lxcState is the state lxc-info reports for a's container.
func lxcState(t *testing.T, a *agenttest.Agent, name string) string { return lxcInfo(t, a, name, "-s") }

func lxcInfo(t *testing.T, a *agenttest.Agent, name, flag string) string {
	t.Helper()
	out, err := exec.Command("lxc-info", "-n", name, "-P", filepath.Join(a.Dir, "containers"), flag, "-H").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: lxc-info %s %s: %v: %s", a.Name, name, flag, err, out)
	}
	return strings.TrimSpace(string(out))
}
