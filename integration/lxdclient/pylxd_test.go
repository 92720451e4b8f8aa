package lxdclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pylxdScript lists what pylxd 2.2 (Debian's python3-pylxd) sees of the cluster: its
// members, its containers (pylxd 2.2 knows only /1.0/containers) with their state and
// location, and its storage pools; one line each, for the test to compare.
const pylxdScript = `
import os, warnings
warnings.simplefilter("ignore")
import pylxd
c = pylxd.Client(endpoint=os.environ["LXD_URL"], cert=(os.environ["LXD_CERT"], os.environ["LXD_KEY"]), verify=False)
print("trusted", c.trusted)
for m in sorted(c.cluster.members.all(), key=lambda m: m.server_name):
    m.sync()
    print("member", m.server_name, m.status, m.database, m.url)
for ct in sorted(c.containers.all(), key=lambda ct: ct.name):
    ct.sync()
    print("container", ct.name, ct.status, ct.location, ct.state().status)
for p in c.storage_pools.all():
    p.sync()
    print("pool", p.name, p.driver)
print("profiles", ",".join(sorted(p.name for p in c.profiles.all())))
ct = c.containers.get("py1")
ct.config["limits.processes"] = "55"
ct.devices["data"] = {"type": "disk", "source": os.environ["DATA_DIR"], "path": "/srv/data"}
ct.save(wait=True)
print("changed", c.containers.get("py1").config.get("limits.processes"), sorted(c.containers.get("py1").devices))
`

// TestPylxd: pylxd lists members, containers (with state and location) and storage pools,
// and changes a running container's limit and devices (save: PUT, an operation); the
// container sees the disk at once.
func TestPylxd(t *testing.T) {
	NeedLXC(t)
	NeedPylxd(t)
	ms := instanceCluster(t)
	ms[0].MustRun("launch", "busybox", "py1", "--target", "node3")
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[1])
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "hello"), []byte("from pylxd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATA_DIR", data)
	r := c.Python(ms[1], pylxdScript)
	if r.Code != 0 {
		t.Fatalf("pylxd script: %s", r)
	}
	want := []string{"trusted True", "member node1 Online True " + URL(ms[0]), "member node2 Online True " + URL(ms[1]), "member node3 Online True " + URL(ms[2]),
		"container py1 Running node3 Running", "pool default dir", "profiles default", "changed 55 ['data']"}
	for _, w := range want {
		if !strings.Contains(r.Stdout, w+"\n") && !strings.Contains(r.Stdout, w+",") {
			t.Fatalf("pylxd printed no %q:\n%s%s", w, r.Stdout, r.Stderr)
		}
	}
	if got := strings.TrimSpace(c.MustRun("exec", "orch:py1", "--", "cat", "/srv/data/hello")); got != "from pylxd" {
		t.Fatalf("/srv/data/hello in py1 after pylxd's save: %q", got)
	}
}
