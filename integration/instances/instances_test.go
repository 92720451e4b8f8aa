package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestInstances runs real busybox containers on a 3-member cluster (then 4): placement,
// list with NODE, exec, files, lifecycle from non-owners, refusals, images and replication.
func TestInstances(t *testing.T) {
	needLXC(t)
	bridge := testBridge(t)
	xz, variants := busyboxTarballs(t, 3)
	ms := formInstanceCluster(t, 3, bridge)
	n1, n2, n3 := ms[0], ms[1], ms[2]

	// Replica 1: the import stays on the importer; launches elsewhere pull on demand.
	n1.MustRun("image", "import", variants[0], "--alias", "busybox")
	if got := holders(t, n2, "busybox"); strings.Join(got, ",") != "node1" {
		t.Fatalf("replica 1: holders %v, want node1 only", got)
	}

	t.Run("placement", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]string, 6)
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				via := ms[i%3]
				if r := via.Run("launch", "busybox", fmt.Sprintf("c%d", i)); r.Code != 0 {
					errs[i] = r.Stderr
				}
			}()
		}
		wg.Wait()
		for i, e := range errs {
			if e != "" {
				t.Fatalf("launch c%d: %s", i, e)
			}
		}
		count := map[string]int{}
		for _, in := range list(t, n2) {
			if in.Status != api.InstanceRunning {
				t.Errorf("%s on %s: %s %s", in.Name, in.Location, in.Status, in.Message)
			}
			count[in.Location]++
		}
		if count["node1"] != 2 || count["node2"] != 2 || count["node3"] != 2 {
			t.Fatalf("6 launches on 3 members placed %v, want 2/2/2", count)
		}
		if got := holders(t, n1, "busybox"); len(got) != 3 {
			t.Fatalf("after launches on every member: holders %v, want all three (on-demand pull)", got)
		}
		out := n3.MustRun("list")
		for _, want := range []string{"NODE", "RUNNING", "node1", "node2", "node3", "c5"} {
			if !strings.Contains(out, want) {
				t.Fatalf("list has no %q:\n%s", want, out)
			}
		}
	})

	n1.MustRun("launch", "busybox", "tgt", "--target", "node3")
	if in := show(t, n1, "tgt"); in.Location != "node3" {
		t.Fatalf("--target node3 launched on %s", in.Location)
	}

	t.Run("exec", func(t *testing.T) {
		r := n1.RunInput("hello from stdin\n", "exec", "tgt", "--", "sh", "-c", "cat; echo to-stderr >&2; hostname; exit 5")
		if r.Code != 5 || r.Stdout != "hello from stdin\ntgt\n" || r.Stderr != "to-stderr\n" {
			t.Fatalf("exec via node1 on node3: exit %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
		}
		if out := n2.MustRun("exec", "tgt", "--", "cat", "/etc/variant"); out != "0" {
			t.Fatalf("exec cat /etc/variant = %q", out)
		}
		checkExecTerminal(t, n1, "tgt")
	})

	t.Run("files", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "in.txt")
		must(t, os.WriteFile(src, []byte("pushed through node2"), 0o640))
		n2.MustRun("file", "push", src, "tgt/root/in.txt")
		dest := filepath.Join(t.TempDir(), "out.txt")
		n1.MustRun("file", "pull", "tgt/root/in.txt", dest)
		if b, _ := os.ReadFile(dest); string(b) != "pushed through node2" {
			t.Fatalf("pulled %q", b)
		}
		if st, _ := os.Stat(dest); st.Mode().Perm() != 0o640 {
			t.Fatalf("pulled mode %v, want 0640", st.Mode().Perm())
		}
		// lxc's word orders: several sources into a directory, -p to create it.
		src2 := filepath.Join(filepath.Dir(src), "second.txt")
		must(t, os.WriteFile(src2, []byte("second"), 0o600))
		n1.MustRun("file", "push", "-p", src, src2, "tgt/root/new/dir/")
		if out := n3.MustRun("exec", "tgt", "--", "cat", "/root/new/dir/in.txt", "/root/new/dir/second.txt"); out != "pushed through node2second" {
			t.Fatalf("file push -p SRC SRC tgt/root/new/dir/: cat says %q", out)
		}
		pulled := filepath.Join(t.TempDir(), "a", "b")
		n2.MustRun("file", "pull", "-p", "tgt/root/new/dir/in.txt", "tgt/root/new/dir/second.txt", pulled+"/")
		for name, want := range map[string]string{"in.txt": "pushed through node2", "second.txt": "second"} {
			if b, err := os.ReadFile(filepath.Join(pulled, name)); err != nil || string(b) != want {
				t.Fatalf("file pull -p SRC SRC DIR/: %s = %q, %v", name, b, err)
			}
		}
		if r := n2.Run("file", "pull", "tgt/root/in.txt", "tgt/root/new/dir/in.txt", filepath.Join(pulled, "in.txt")); r.Code == 0 || !strings.Contains(r.Stderr, "not a directory") {
			t.Fatalf("file pull of two files to a file: exit %d %s", r.Code, r.Stderr)
		}
		// -r: a tree in, and back out (regular files and directories).
		tree := filepath.Join(t.TempDir(), "tree")
		must(t, os.MkdirAll(filepath.Join(tree, "b", "c"), 0o755))
		must(t, os.WriteFile(filepath.Join(tree, "x.txt"), []byte("x"), 0o644))
		must(t, os.WriteFile(filepath.Join(tree, "b", "c", "y.txt"), []byte("y"), 0o600))
		n1.MustRun("file", "push", "-r", tree, "tgt/root/tree")
		if out := n2.MustRun("exec", "tgt", "--", "cat", "/root/tree/x.txt", "/root/tree/b/c/y.txt"); out != "xy" {
			t.Fatalf("file push -r: cat says %q", out)
		}
		back := filepath.Join(t.TempDir(), "back")
		n3.MustRun("file", "pull", "-r", "tgt/root/tree", back)
		for rel, want := range map[string]string{"x.txt": "x", "b/c/y.txt": "y"} {
			if b, err := os.ReadFile(filepath.Join(back, rel)); err != nil || string(b) != want {
				t.Fatalf("file pull -r: %s = %q, %v", rel, b, err)
			}
		}
		// A missing file: the instance and the path are each named once.
		if r := n2.Run("file", "pull", "tgt/root/nope", "-"); r.Code == 0 || strings.Count(r.Stderr, "tgt") != 1 ||
			strings.Count(r.Stderr, "/root/nope") != 1 || !strings.Contains(r.Stderr, "no such file") {
			t.Errorf("file pull of a missing file: exit %d, %q", r.Code, r.Stderr)
		}
		// Path traversal: ".." above the root is refused; symlinks resolve inside the rootfs.
		secret := filepath.Join(t.TempDir(), "host-secret")
		must(t, os.WriteFile(secret, []byte("host only"), 0o600))
		n1.MustRun("exec", "tgt", "--", "ln", "-s", secret, "/abs")
		n1.MustRun("exec", "tgt", "--", "ln", "-s", "../../../../../../../.."+secret, "/rel")
		for _, p := range []string{"tgt/../../../../" + secret, "tgt/abs", "tgt/rel"} {
			r := n2.Run("file", "pull", p, "-")
			if r.Code == 0 || strings.Contains(r.Stdout, "host only") {
				t.Errorf("file pull %s: exit %d, stdout %q: escaped the rootfs", p, r.Code, r.Stdout)
			}
		}
		r := n2.Run("file", "push", src, "tgt/../../../"+secret)
		if r.Code == 0 || !strings.Contains(r.Stderr, "escapes") {
			t.Errorf("file push with ..: exit %d %s", r.Code, r.Stderr)
		}
		if b, _ := os.ReadFile(secret); string(b) != "host only" {
			t.Fatalf("host file changed: %q", b)
		}
	})

	t.Run("lifecycle from a non-owner", func(t *testing.T) {
		n1.MustRun("stop", "tgt")
		if in := show(t, n2, "tgt"); in.Status != api.InstanceStopped {
			t.Fatalf("after stop: %s", in.Status)
		}
		if r := n1.Run("exec", "tgt", "--", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "not running") {
			t.Fatalf("exec in a stopped instance: %d %s", r.Code, r.Stderr)
		}
		n2.MustRun("start", "tgt")
		n1.MustRun("restart", "tgt")
		if in := show(t, n1, "tgt"); in.Status != api.InstanceRunning || in.PID == 0 {
			t.Fatalf("after start+restart: %+v", in)
		}
		// The instance is named once ("tgt: tgt: container is running" before) and the
		// advice names the flag.
		if r := n2.Run("delete", "tgt"); r.Code == 0 || !strings.Contains(r.Stderr, "running") ||
			strings.Count(r.Stderr, "tgt") != 1 || !strings.Contains(r.Stderr, "--force") {
			t.Fatalf("delete of a running instance without --force: %d %s", r.Code, r.Stderr)
		}
		n2.MustRun("delete", "--force", "tgt")
		if r := n1.Run("exec", "tgt", "--", "true"); r.Code == 0 || !strings.Contains(r.Stderr, "no instance") {
			t.Fatalf("exec after delete: %d %s", r.Code, r.Stderr)
		}
	})

	t.Run("removal refused while owning instances", func(t *testing.T) {
		r := n1.Run("cluster", "remove", "node3")
		if r.Code == 0 || !strings.Contains(r.Stderr, "still owns instances") {
			t.Fatalf("cluster remove node3: %d %s", r.Code, r.Stderr)
		}
	})

	t.Run("profiles", func(t *testing.T) {
		out := n1.MustRun("profile", "show", "default")
		if !strings.Contains(out, "eth0") || !strings.Contains(out, "pool: default") {
			t.Fatalf("default profile:\n%s", out)
		}
		n1.MustRun("profile", "create", "nonet")
		n2.MustRunInput("description: no network\ndevices:\n  root: {path: /, pool: default, type: disk}\n", "profile", "edit", "nonet")
		n1.MustRun("launch", "busybox", "quiet", "-p", "nonet", "--target", "node2")
		ips := n2.MustRun("exec", "quiet", "--", "ls", "/sys/class/net")
		if strings.Contains(ips, "eth0") {
			t.Fatalf("instance with profile nonet has eth0: %s", ips)
		}
		if r := n1.Run("profile", "delete", "nonet"); r.Code == 0 || !strings.Contains(r.Stderr, "quiet") {
			t.Fatalf("deleting a profile in use: %d %s", r.Code, r.Stderr)
		}
		n1.MustRun("delete", "-f", "quiet")
		n1.MustRun("profile", "delete", "nonet")
	})

	t.Run("remote", func(t *testing.T) {
		url := imageServer(t, xz)
		n2.MustRun("remote", "add", "testsrv", url)
		n3.MustRun("launch", "testsrv:busybox", "fromremote", "--target", "node1")
		if out := n1.MustRun("exec", "fromremote", "--", "cat", "/etc/hostname"); out != "busybox\n" {
			t.Fatalf("instance from the remote: /etc/hostname %q", out)
		}
		n3.MustRun("delete", "-f", "fromremote")
	})

	// A fourth member, so that replica 3 and -1 differ.
	n4 := agenttest.New(t, "node4", agenttest.NewAddr(t))
	cleanupContainers(t, []*agenttest.Agent{n4})
	n4.Start()
	agenttest.JoinWithToken(t, n1, n4)
	ms = append(ms, n4)

	t.Run("replicas", func(t *testing.T) {
		n1.MustRun("config", "set", "cluster.images_minimal_replica", "3")
		n2.MustRun("image", "import", variants[1], "--alias", "three")
		if got := holders(t, n1, "three"); len(got) != 3 {
			t.Fatalf("replica 3: holders %v", got)
		}
		n1.MustRun("config", "set", "cluster.images_minimal_replica=-1")
		n3.MustRun("image", "import", variants[2], "--alias", "all")
		if got := holders(t, n1, "all"); len(got) != 4 {
			t.Fatalf("replica -1: holders %v, want all 4", got)
		}
		// On-demand pull of "three" by the member that lacks it.
		var lacking string
		have := map[string]bool{}
		for _, h := range holders(t, n1, "three") {
			have[h] = true
		}
		for _, a := range ms {
			if !have[a.Name] {
				lacking = a.Name
			}
		}
		n1.MustRun("launch", "three", "ondemand", "--target", lacking)
		if got := holders(t, n1, "three"); len(got) != 4 {
			t.Fatalf("after a launch on %s: holders %v, want 4", lacking, got)
		}
		n1.MustRun("delete", "-f", "ondemand")
		// Removing a holder re-replicates to keep 3 copies of "three" (node4 owns nothing).
		n1.MustRun("image", "delete", "all")
		n1.MustRun("config", "set", "cluster.images_minimal_replica", "3")
		n1.MustRun("cluster", "remove", "node4")
		wait.For(t, 30*time.Second, "3 holders of image three after node4 left", func() error {
			if got := holders(t, n1, "three"); len(got) != 3 {
				return fmt.Errorf("holders %v", got)
			}
			return nil
		})
	})

	t.Run("owner offline", func(t *testing.T) {
		var owned string
		for _, in := range list(t, n1) {
			if in.Location == "node3" {
				owned = in.Name
			}
		}
		n3.Kill()
		wait.For(t, 30*time.Second, "node3 OFFLINE", func() error {
			out := n1.MustRun("cluster", "list")
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "node3") && strings.Contains(strings.ToUpper(line), "OFFLINE") {
					return nil
				}
			}
			return fmt.Errorf("cluster list:\n%s", out)
		})
		for _, args := range [][]string{{"exec", owned, "--", "true"}, {"stop", owned}, {"delete", "-f", owned}, {"file", "pull", owned + "/etc/hostname", "-"}} {
			start := time.Now()
			r := n2.Run(args...)
			if r.Code == 0 || !strings.Contains(r.Stderr, "node3") || !strings.Contains(r.Stderr, "offline") {
				t.Errorf("%v with node3 offline: exit %d: %s", args, r.Code, r.Stderr)
			}
			t.Logf("%v refused in %v: %s", args, time.Since(start).Round(time.Millisecond), strings.TrimSpace(r.Stderr))
		}
		for _, in := range list(t, n2) {
			if in.Location == "node3" && in.Status != api.InstanceUnknown {
				t.Errorf("%s on offline node3 shows %s", in.Name, in.Status)
			}
		}
		if r := n1.Run("launch", "busybox", "never", "--target", "node3"); r.Code == 0 || !strings.Contains(r.Stderr, "offline") {
			t.Errorf("launch --target offline node3: %d %s", r.Code, r.Stderr)
		}
	})
}

// list returns `list --format json` run on a.
func list(t *testing.T, a *agenttest.Agent) []api.Instance {
	t.Helper()
	var out []api.Instance
	must(t, json.Unmarshal([]byte(a.MustRun("list", "--format", "json")), &out))
	return out
}

// show returns one instance as a sees it.
func show(t *testing.T, a *agenttest.Agent, name string) api.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, err := a.Client().Instance(ctx, name)
	if err != nil {
		t.Fatalf("%s: instance %s: %v", a.Name, name, err)
	}
	return *in
}

// holders lists the members holding a copy of an image, sorted.
func holders(t *testing.T, a *agenttest.Agent, ref string) []string {
	t.Helper()
	var img api.Image
	must(t, json.Unmarshal([]byte(a.MustRun("image", "show", ref, "--format", "json")), &img))
	sort.Strings(img.Members)
	return img.Members
}
