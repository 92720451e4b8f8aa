package lxdclient

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSnapshotsWithLXC: `lxc snapshot` (named by LXD's rule, and by hand) through a member
// that does not own the instance, `lxc info` lists them, `lxc restore` of a running
// instance puts the files back and it runs again, `lxc delete c1/SNAP` removes one, an
// instance with snapshots does not move, `lxc rename` (stopped) takes files, snapshots and
// host name along, and deleting it deletes its snapshots' files.
func TestSnapshotsWithLXC(t *testing.T) {
	NeedLXC(t)
	ms := instanceCluster(t)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])
	c.MustRun("launch", "busybox", "c1", "--target", "node2")
	marker := func() string {
		t.Helper()
		return strings.TrimSpace(c.MustRun("exec", "c1", "--", "cat", "/root/marker"))
	}
	c.MustRun("exec", "c1", "--", "sh", "-c", "echo one > /root/marker")
	c.MustRun("snapshot", "c1")
	c.MustRun("snapshot", "c1", "before")
	c.WantFailure([]string{"snapshot", "c1", "before"}, "already has a snapshot")
	c.MustRun("exec", "c1", "--", "sh", "-c", "echo two > /root/marker")
	wantAll(t, "lxc info c1", c.MustRun("info", "c1"), "Snapshots:", "snap0", "before")

	c.MustRun("restore", "c1", "snap0")
	if got := marker(); got != "one" {
		t.Fatalf("/root/marker after restoring snap0: %q", got)
	}
	c.MustRun("delete", "c1/before")
	if out := c.MustRun("info", "c1"); strings.Contains(out, "before") || !strings.Contains(out, "snap0") {
		t.Fatalf("lxc info c1 after deleting before:\n%s", out)
	}
	c.WantFailure([]string{"rename", "c1", "c5"}, "stop it first")
	c.MustRun("stop", "c1", "--force")
	c.WantFailure([]string{"move", "c1", "--target", "node3"}, "snapshots")

	// A rename takes the files, the settings and the snapshots along.
	c.MustRun("rename", "c1", "c5")
	c.MustRun("start", "c5")
	if got := strings.TrimSpace(c.MustRun("exec", "c5", "--", "sh", "-c", "cat /root/marker; hostname")); got != "one\nc5" {
		t.Fatalf("c5 after renaming c1: %q", got)
	}
	wantAll(t, "lxc info c5", c.MustRun("info", "c5"), "Snapshots:", "snap0")
	c.WantFailure([]string{"info", "c1"}, `no instance named "c1"`)
	c.MustRun("restore", "c5", "snap0")
	c.MustRun("delete", "c5", "--force")
	left, _ := filepath.Glob(filepath.Join(ms[1].Dir, "storage-pools", "*", "containers-snapshots", "*", "*"))
	if len(left) > 0 {
		t.Fatalf("snapshots left after deleting c5: %v", left)
	}
}
