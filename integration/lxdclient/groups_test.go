package lxdclient

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestClusterGroupsWithLXC drives LXD's cluster groups with the real lxc client: every
// member starts in "default"; a group made, members assigned to it (alone, and with
// default; lxc 5.0 has no `group add`), `launch --target @GROUP` places only on the group's members; a group
// with members, "default", and leaving a member in no group are refused naming why and
// change nothing; rename, edit (members added keep default), remove, delete of the
// emptied group.
func TestClusterGroupsWithLXC(t *testing.T) {
	NeedLXC(t)
	ms := instanceCluster(t)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])

	wantAll(t, "lxc cluster group list", c.MustRun("cluster", "group", "list", "--format", "csv"), "default,")
	wantAll(t, "lxc cluster group show default", c.MustRun("cluster", "group", "show", "default"), "- node1", "- node2", "- node3")
	c.MustRun("cluster", "group", "create", "gpu")
	c.MustRun("cluster", "group", "assign", "node3", "gpu")
	c.MustRun("cluster", "group", "assign", "node2", "default,gpu")
	show := c.MustRun("cluster", "group", "show", "gpu")
	wantAll(t, "lxc cluster group show gpu", show, "- node2", "- node3")
	if strings.Contains(show, "node1") {
		t.Fatalf("node1 in gpu:\n%s", show)
	}
	wantAll(t, "lxc cluster show node2", c.MustRun("cluster", "show", "node2"), "- default", "- gpu")
	if out := c.MustRun("cluster", "show", "node3"); strings.Contains(out, "- default") {
		t.Fatalf("node3 was assigned gpu only, still in default:\n%s", out)
	}

	for _, name := range []string{"g1", "g2", "g3"} {
		c.MustRun("launch", "busybox", name, "--target", "@gpu")
		in, err := ms[0].Client().Instance(context.Background(), name)
		if err != nil || !slices.Contains([]string{"node2", "node3"}, in.Location) {
			t.Fatalf("%s launched on @gpu: %+v, %v", name, in, err)
		}
	}
	c.WantFailure([]string{"launch", "busybox", "g9", "--target", "@nosuch"}, "nosuch")

	c.WantFailure([]string{"cluster", "group", "delete", "gpu"}, "still has members")
	c.WantFailure([]string{"cluster", "group", "delete", "default"}, "cannot be deleted")
	c.WantFailure([]string{"cluster", "group", "remove", "node3", "gpu"}, "no cluster group")
	wantAll(t, "gpu after refusals", c.MustRun("cluster", "group", "show", "gpu"), "- node2", "- node3")

	c.MustRun("cluster", "group", "rename", "gpu", "accel")
	wantAll(t, "lxc cluster group list after rename", c.MustRun("cluster", "group", "list", "--format", "csv"), "accel,", "default,")
	c.MustRunInput("description: fast\nmembers:\n- node1\n- node2\n- node3\n", "cluster", "group", "edit", "accel")
	wantAll(t, "lxc cluster show node1 after edit", c.MustRun("cluster", "show", "node1"), "- accel", "- default")
	wantAll(t, "lxc cluster group show accel after edit", c.MustRun("cluster", "group", "show", "accel"), "description: fast", "- node1")
	c.MustRun("cluster", "group", "assign", "node3", "default")
	c.MustRun("cluster", "group", "remove", "node2", "accel")
	c.MustRunInput("description: fast\nmembers: []\n", "cluster", "group", "edit", "accel")
	if out := c.MustRun("cluster", "group", "show", "accel"); strings.Contains(out, "node") {
		t.Fatalf("accel not empty:\n%s", out)
	}
	c.MustRun("cluster", "group", "delete", "accel")
	wantAll(t, "default at the end", c.MustRun("cluster", "group", "show", "default"), "- node1", "- node2", "- node3")
}
