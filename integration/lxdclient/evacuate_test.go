package lxdclient

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"orch/nodeagent/api"
)

// TestEvacuateWithLXC: `lxc cluster evacuate node2` stops node2's running instances (one
// already stopped stays so), lists node2 EVACUATED, and no launch lands there meanwhile (a
// --target at it is refused naming why); `lxc cluster restore node2` starts again exactly
// those it stopped and node2 is ONLINE.
func TestEvacuateWithLXC(t *testing.T) {
	NeedLXC(t)
	ms := instanceCluster(t)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])
	c.MustRun("launch", "busybox", "c1", "--target", "node2")
	c.MustRun("launch", "busybox", "c2", "--target", "node2")
	c.MustRun("stop", "c2", "--force")
	c.MustRun("launch", "busybox", "c3", "--target", "node3")
	statusOf := func(name string) string {
		t.Helper()
		in, err := ms[0].Client().Instance(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		return in.Status
	}

	c.MustRun("cluster", "evacuate", "node2", "--force")
	if got := []string{statusOf("c1"), statusOf("c2"), statusOf("c3")}; strings.Join(got, ",") != "Stopped,Stopped,Running" {
		t.Fatalf("after evacuating node2: c1, c2, c3 = %v", got)
	}
	wantAll(t, "lxc cluster list", c.MustRun("cluster", "list", "--format", "csv"), "node2,", "EVACUATED", "Unavailable due to maintenance")
	for _, name := range []string{"e1", "e2", "e3"} {
		c.MustRun("launch", "busybox", name)
		if in, err := ms[0].Client().Instance(context.Background(), name); err != nil || in.Location == "node2" {
			t.Fatalf("%s launched while node2 is evacuated: %+v, %v", name, in, err)
		}
	}
	c.WantFailure([]string{"launch", "busybox", "e9", "--target", "node2"}, "node2 is evacuated")

	c.MustRun("cluster", "restore", "node2", "--force")
	if got := []string{statusOf("c1"), statusOf("c2")}; strings.Join(got, ",") != api.InstanceRunning+","+api.InstanceStopped {
		t.Fatalf("after restoring node2: c1, c2 = %v", got)
	}
	if out := c.MustRun("cluster", "list", "--format", "csv"); strings.Contains(out, "EVACUATED") {
		t.Fatalf("node2 still evacuated after restore:\n%s", out)
	}
	c.MustRun("launch", "busybox", "r1", "--target", "node2")
}

// TestMoveWithLXC: `lxc move c1 --target node3` of a stopped instance copies its files
// (a file written inside survives), its profiles and limits, runs there, and node2 keeps
// nothing of it; a running one and a move to an unknown member are refused naming why,
// changing nothing.
func TestMoveWithLXC(t *testing.T) {
	NeedLXC(t)
	ms := instanceCluster(t)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])
	c.MustRun("launch", "busybox", "c1", "--target", "node2", "-c", "limits.processes=77")
	c.MustRun("exec", "c1", "--", "sh", "-c", "echo kept > /root/marker")
	c.WantFailure([]string{"move", "c1", "--target", "node3"}, "stop it first")
	c.MustRun("stop", "c1", "--force")
	c.WantFailure([]string{"move", "c1", "--target", "node9"}, "node9")

	c.MustRun("move", "c1", "--target", "node3")
	in, err := ms[0].Client().Instance(context.Background(), "c1")
	if err != nil || in.Location != "node3" {
		t.Fatalf("c1 after lxc move --target node3: %+v, %v", in, err)
	}
	c.MustRun("start", "c1")
	if got := strings.TrimSpace(c.MustRun("exec", "c1", "--", "cat", "/root/marker")); got != "kept" {
		t.Fatalf("/root/marker after the move: %q", got)
	}
	wantAll(t, "lxc config show c1", c.MustRun("config", "show", "c1"), `limits.processes: "77"`)
	if out, _ := exec.Command("lxc-ls", "-P", filepath.Join(ms[1].Dir, "containers"), "-1").Output(); strings.TrimSpace(string(out)) != "" {
		t.Fatalf("node2 still has containers after the move: %q", out)
	}
	wantAll(t, "lxc storage volume list", c.MustRun("storage", "volume", "list", "default", "type=container", "--format", "csv"), "container,c1,")
	if out := c.MustRun("storage", "volume", "list", "default", "--format", "csv"); strings.Contains(out, "node2") {
		t.Fatalf("node2 still holds a volume after the move:\n%s", out)
	}
}

// TestCopyWithLXC: `lxc copy c1 c2 --target node3` copies a stopped instance's files and
// settings to another member (created stopped, as LXD's), `lxc copy c1 c3` places one like
// a launch; copying a running one is refused naming why; the copies are independent.
func TestCopyWithLXC(t *testing.T) {
	NeedLXC(t)
	ms := instanceCluster(t)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])
	c.MustRun("launch", "busybox", "c1", "--target", "node2", "-c", "user.team=blue")
	c.MustRun("exec", "c1", "--", "sh", "-c", "echo original > /root/marker")
	c.WantFailure([]string{"copy", "c1", "c2"}, "stop the instance first")
	c.MustRun("stop", "c1", "--force")

	c.MustRun("copy", "c1", "c2", "--target", "node3")
	in, err := ms[0].Client().Instance(context.Background(), "c2")
	if err != nil || in.Location != "node3" || in.Status != api.InstanceStopped {
		t.Fatalf("c2 after lxc copy --target node3: %+v, %v", in, err)
	}
	wantAll(t, "lxc config show c2", c.MustRun("config", "show", "c2"), "user.team: blue")
	c.MustRun("start", "c2")
	if got := strings.TrimSpace(c.MustRun("exec", "c2", "--", "cat", "/root/marker")); got != "original" {
		t.Fatalf("/root/marker in the copy: %q", got)
	}
	c.MustRun("exec", "c2", "--", "sh", "-c", "echo changed > /root/marker")
	c.MustRun("copy", "c1", "c3")
	c.MustRun("start", "c1", "c3")
	for _, name := range []string{"c1", "c3"} {
		if got := strings.TrimSpace(c.MustRun("exec", name, "--", "cat", "/root/marker")); got != "original" {
			t.Fatalf("/root/marker in %s after changing c2's: %q", name, got)
		}
	}
	c.WantFailure([]string{"copy", "c9", "c4"}, "c9")
}
