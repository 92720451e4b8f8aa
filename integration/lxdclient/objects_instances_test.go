package lxdclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
)

// TestInstanceObjectsWithLXC: containers launched with the agent's CLI, then seen and used
// through lxc: list with the LOCATION column (recursion=2, filters), info, file
// push/pull (files, directories, delete), image list/edit/alias, profile set/show.
func TestInstanceObjectsWithLXC(t *testing.T) {
	NeedLXC(t)
	ms := instanceCluster(t)
	ms[0].MustRun("launch", "busybox", "c1", "--target", "node2")
	ms[0].MustRun("launch", "busybox", "c2", "--target", "node3")
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[0])

	{ // list
		out := c.MustRun("list", "-c", "nsL", "--format", "csv")
		wantAll(t, "lxc list -c nsL", out, "c1,RUNNING,node2", "c2,RUNNING,node3")
		if out := c.MustRun("list", "location=node3", "-c", "nL", "--format", "csv"); strings.TrimSpace(out) != "c2,node3" {
			t.Fatalf("lxc list location=node3: %q", out)
		}
		wantAll(t, "lxc list (table)", c.MustRun("list"), "LOCATION", "c1", "RUNNING", "CONTAINER")
		wantAll(t, "lxc list --all-projects", c.MustRun("list", "--all-projects", "-c", "enL", "--format", "csv"), "default,c1,node2", "default,c2,node3")
	}
	{ // config (PUT /1.0/instances/NAME, an operation)
		c.MustRun("config", "set", "c1", "user.team", "blue")
		c.MustRun("config", "set", "c1", "boot.autostart", "false")
		if got := strings.TrimSpace(c.MustRun("config", "get", "c1", "user.team")); got != "blue" {
			t.Fatalf("lxc config get c1 user.team = %q after set blue", got)
		}
		wantAll(t, "lxc config show c1", c.MustRun("config", "show", "c1"), "user.team: blue", `boot.autostart: "false"`, "- default")
		c.WantFailure([]string{"config", "set", "c1", "security.privileged", "true"}, `config key "security.privileged" cannot change`)
		c.MustRun("config", "unset", "c1", "user.team")
		if out := c.MustRun("config", "show", "c1"); strings.Contains(out, "user.team") {
			t.Fatalf("user.team after unset:\n%s", out)
		}
	}
	{ // used_by: c1's root volume is in the default pool, which the default profile names
		wantAll(t, "lxc storage show default", c.MustRun("storage", "show", "default"), "used_by:", "- /1.0/instances/c1", "- /1.0/profiles/default")
	}
	{ // info
		wantAll(t, "lxc info c1", c.MustRun("info", "c1"), "Name: c1", "Status: RUNNING", "Type: container", "Location: node2", "PID:",
			"Resources:", "CPU usage (in seconds):", "Memory (current):", "Bytes received:")
	}
	{ // files
		src := filepath.Join(t.TempDir(), "hello.txt")
		if err := os.WriteFile(src, []byte("hello from lxc\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		c.MustRun("file", "push", src, "c2/root/hello.txt")
		dest := filepath.Join(t.TempDir(), "back.txt")
		c.MustRun("file", "pull", "c2/root/hello.txt", dest)
		if b, err := os.ReadFile(dest); err != nil || string(b) != "hello from lxc\n" {
			t.Fatalf("pulled %q, %v", b, err)
		}
		if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o640 {
			t.Fatalf("pulled mode %v, %v; want 0640", st.Mode().Perm(), err)
		}
		// A tree: push -r makes the directories (X-LXD-type: directory), pull -r lists them.
		tree := filepath.Join(t.TempDir(), "tree")
		if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, "sub", "f"), []byte("deep"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.MustRun("file", "push", "-r", tree, "c2/root/")
		back := t.TempDir()
		c.MustRun("file", "pull", "-r", "c2/root/tree", back)
		if b, err := os.ReadFile(filepath.Join(back, "tree", "sub", "f")); err != nil || string(b) != "deep" {
			t.Fatalf("push -r then pull -r: %q, %v", b, err)
		}
		// file_append: X-LXD-write: append (lxc 5.0 has no flag for it; LXD's Go client sends it).
		appendFile(t, ms[1], "c2", "/root/hello.txt", "more\n")
		c.MustRun("file", "pull", "c2/root/hello.txt", dest)
		if b, _ := os.ReadFile(dest); string(b) != "hello from lxc\nmore\n" {
			t.Fatalf("after an append: %q", b)
		}
		c.MustRun("file", "delete", "c2/root/hello.txt")
		c.WantFailure([]string{"file", "pull", "c2/root/hello.txt", dest}, "no such file")
	}
	{ // images
		wantAll(t, "lxc image list", c.MustRun("image", "list", "--format", "csv"), "busybox,")
		c.MustRun("image", "alias", "create", "bb2", "busybox")
		wantAll(t, "lxc image alias list", c.MustRun("image", "alias", "list", "--format", "csv"), "bb2,", "busybox,")
		c.MustRun("image", "alias", "rename", "bb2", "bb3")
		out := c.MustRun("image", "alias", "list", "--format", "csv")
		if strings.Contains(out, "bb2,") || !strings.Contains(out, "bb3,") {
			t.Fatalf("after rename bb2 bb3:\n%s", out)
		}
		c.MustRun("image", "alias", "delete", "bb3")
		if out := c.MustRun("image", "alias", "list", "--format", "csv"); strings.Contains(out, "bb3") {
			t.Fatalf("after delete bb3:\n%s", out)
		}
		wantAll(t, "lxc image show busybox", c.MustRun("image", "show", "busybox"), "public: false", "profiles: []")
		// edit (GET + PUT with If-Match): the description property shows in the list.
		ishow := c.MustRun("image", "show", "busybox")
		c.MustRunInput(strings.Replace(ishow, "properties: {}", "properties:\n  description: tiny busybox", 1), "image", "edit", "busybox")
		wantAll(t, "lxc image list after edit", c.MustRun("image", "list", "--format", "csv"), "busybox,", ",tiny busybox,")
		r := c.RunInput(strings.Replace(ishow, "public: false", "public: true", 1), "image", "edit", "busybox")
		if r.Code == 0 || !strings.Contains(r.Stderr, "public: public images are not supported") {
			t.Fatalf("a public image: %s", r)
		}
		// import (an operation) with an alias, list, delete (an operation).
		xz, _ := agenttest.BusyboxTarballs(t, 0)
		wantAll(t, "lxc image import", c.MustRun("image", "import", xz, "--alias", "bbx"), "Image imported with fingerprint: ")
		wantAll(t, "lxc image list after import", c.MustRun("image", "list", "bbx", "--format", "csv"), "bbx,", ",CONTAINER,")
		c.MustRun("image", "delete", "bbx")
		if out := c.MustRun("image", "list", "--format", "csv"); strings.Contains(out, "bbx") {
			t.Fatalf("bbx still listed after delete:\n%s", out)
		}
		wantAll(t, "lxc image info busybox", c.MustRun("image", "info", "busybox"), "Fingerprint: ", "Aliases:\n    - busybox", "Type: container")
	}
	{ // profiles
		c.MustRun("profile", "create", "p1")
		c.MustRun("profile", "set", "p1", "boot.autostart", "true")
		wantAll(t, "lxc profile show p1", c.MustRun("profile", "show", "p1"), "boot.autostart: \"true\"", "name: p1")
		wantAll(t, "lxc profile show default", c.MustRun("profile", "show", "default"), "/1.0/instances/c1", "/1.0/instances/c2", "pool: default")
		wantAll(t, "lxc profile list", c.MustRun("profile", "list", "--format", "csv"), "default,", "p1,")
		// rename (POST /1.0/profiles/p1): the config goes along; a used profile, the
		// default profile and a taken name are refused.
		c.MustRun("profile", "rename", "p1", "p2")
		wantAll(t, "lxc profile show p2", c.MustRun("profile", "show", "p2"), "boot.autostart: \"true\"", "name: p2")
		c.WantFailure([]string{"profile", "rename", "default", "p3"}, "the default profile cannot be renamed")
		c.WantFailure([]string{"profile", "rename", "p2", "default"}, "already exists")
		c.MustRun("profile", "create", "used")
		c.MustRun("profile", "add", "c1", "used")
		c.WantFailure([]string{"profile", "rename", "used", "p4"}, "used by instance c1")
		c.MustRun("profile", "remove", "c1", "used")
		c.MustRun("profile", "delete", "used")
		c.MustRun("profile", "delete", "p2")
		if out := c.MustRun("profile", "list", "--format", "csv"); strings.Contains(out, "p1,") || strings.Contains(out, "p2,") {
			t.Fatalf("p1 or p2 still listed:\n%s", out)
		}
	}
}

// instanceCluster is a 3-member cluster that runs containers (agenttest's instance
// cluster: a "default" dir pool, a default profile with a root disk on it and eth0 on a
// bridge of the test) with the busybox image imported as "busybox".
func instanceCluster(t *testing.T) []*agenttest.Agent {
	t.Helper()
	agenttest.NeedLXC(t)
	bridge := agenttest.TestBridge(t, "lo")
	_, variants := agenttest.BusyboxTarballs(t, 1)
	ms := agenttest.FormInstanceCluster(t, 3, bridge)
	ms[0].MustRun("image", "import", variants[0], "--alias", "busybox")
	return ms
}

// appendFile appends data to a file of an instance through a's socket (POST
// /1.0/instances/NAME/files with X-LXD-write: append).
func appendFile(t *testing.T, a *agenttest.Agent, name, path, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hdr := http.Header{api.HeaderFileWrite: {"append"}, api.HeaderFileType: {"file"}}
	resp, err := a.Client().Raw(ctx, http.MethodPost, "/1.0/instances/"+name+"/files?path="+url.QueryEscape(path), strings.NewReader(data), hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("append to %s:%s: HTTP %d %s", name, path, resp.StatusCode, b)
	}
}
