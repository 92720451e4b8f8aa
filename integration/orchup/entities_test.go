package orchup

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// entitiesPlaybook declares a dir pool, a managed bridge, a profile using both, the busybox
// image and a container on host2, all through the cluster API via host1.
const entitiesPlaybook = `- name: Declare the cluster's objects
  hosts: host1
  gather_facts: false
  tasks:
    - name: Ask the agent what it is
      agent_facts: {}
      register: agent
    - name: Pool
      storage_pool: {via: host1, fingerprint: "{{ agent.fingerprint }}", name: playpool, driver: dir}
    - name: Network
      network:
        via: host1
        fingerprint: "{{ agent.fingerprint }}"
        name: playbr0
        config: {ipv4.address: auto}
    - name: Profile
      profile:
        via: host1
        fingerprint: "{{ agent.fingerprint }}"
        name: playprof
        description: dir root, eth0 on playbr0
        devices:
          root: {path: /, pool: playpool, type: disk}
          eth0: {name: eth0, network: playbr0, type: nic}
    - name: Image
      image: {via: host1, fingerprint: "{{ agent.fingerprint }}", alias: busybox, src: "{{ image_src }}"}
    - name: Instance
      instance:
        via: host1
        fingerprint: "{{ agent.fingerprint }}"
        name: c1
        image: busybox
        target: host2
        profiles: [playprof]
        state: running
`

// needContainers skips unless LXC, dnsmasq, xz and a static busybox are here.
func needContainers(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"lxc-start", "lxc-attach", "dnsmasq", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install lxc, dnsmasq-base and xz-utils", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox: install busybox-static")
	}
}

// busyboxImage builds the busybox image with scripts/mkimage.sh.
func busyboxImage(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "busybox.tar.xz")
	if b, err := exec.Command("../../scripts/mkimage.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("mkimage.sh: %v: %s", err, b)
	}
	return out
}

var recapChanged = regexp.MustCompile(`(?m)^(host\d+)\s+: ok=\d+\s+changed=(\d+)`)

// TestPlayDeclaresClusterObjects runs a playbook with storage_pool, network, profile, image
// and instance tasks through `orch play` on a 2-member cluster made by `orch up`: c1 runs
// on host2 with its root on the pool and eth0 on the bridge, where the image's own udhcpc
// gets it a lease; a second run and a --check run change nothing. Then the orch image,
// profile and remote verbs work against the same cluster.
func TestPlayDeclaresClusterObjects(t *testing.T) {
	needContainers(t)
	e := newEnv(t, 2)
	img := busyboxImage(t)
	e.mustUp()
	pb := filepath.Join(e.dir, "entities.yml")
	if err := os.WriteFile(pb, []byte(entitiesPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.orch("play", pb, "-e", "image_src="+img)
	if r.code != 0 {
		t.Fatalf("play exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if m := recapChanged.FindStringSubmatch(r.stdout); m == nil || m[2] != "5" {
		t.Errorf("first run: want changed=5 for host1:\n%s", r.stdout)
	}
	c1 := waitLease(t, e, "c1")
	t.Logf("first run:\n%s\nc1: %s on %s, IPv4 %v", r.stdout, c1.Status, c1.Location, c1.IPv4)
	if c1.Location != "host2" || c1.Status != api.InstanceRunning {
		t.Errorf("c1: %+v, want Running on host2", c1)
	}
	for _, args := range [][]string{{}, {"--check"}} {
		r = e.orch(append([]string{"play", pb, "-e", "image_src=" + img}, args...)...)
		if r.code != 0 {
			t.Fatalf("re-run %v exited %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		if m := recapChanged.FindStringSubmatch(r.stdout); m == nil || m[2] != "0" {
			t.Errorf("re-run %v is not idempotent (want changed=0):\n%s", args, r.stdout)
		}
	}
	t.Run("verbs", func(t *testing.T) { checkVerbs(t, e, img) })
}

// waitLease waits until orch list shows the instance with an IPv4 address in its
// network's subnet.
func waitLease(t *testing.T, e *env, name string) api.Instance {
	t.Helper()
	var n api.NetworkInfo
	mustJSON(t, e, &n, "network", "show", "playbr0", "--format", "json")
	_, subnet, err := net.ParseCIDR(n.Config["ipv4.address"])
	if err != nil {
		t.Fatalf("playbr0 ipv4.address %q: %v", n.Config["ipv4.address"], err)
	}
	var got api.Instance
	wait.ForEvery(t, 30*time.Second, 200*time.Millisecond, fmt.Sprintf("a DHCP lease in %s for %s", subnet, name), func() error {
		var list []api.Instance
		mustJSON(t, e, &list, "list", "--format", "json")
		for _, in := range list {
			if in.Name == name && len(in.IPv4) > 0 && subnet.Contains(net.ParseIP(in.IPv4[0])) {
				got = in
				return nil
			}
		}
		return fmt.Errorf("orch list %+v", list)
	})
	return got
}

// mustJSON runs orch and decodes its JSON output into v.
func mustJSON(t *testing.T, e *env, v any, args ...string) {
	t.Helper()
	r := e.orch(args...)
	if r.code != 0 {
		t.Fatalf("orch %v exited %d: %s%s", args, r.code, r.stdout, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("orch %v: %v\n%s", args, err, r.stdout)
	}
}

// checkVerbs drives orch's image, profile and remote verbs.
func checkVerbs(t *testing.T, e *env, img string) {
	mustOrch := func(args ...string) string {
		t.Helper()
		r := e.orch(args...)
		if r.code != 0 {
			t.Fatalf("orch %v exited %d: %s%s", args, r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	var imgs []api.Image
	mustJSON(t, e, &imgs, "image", "list", "--format", "json")
	if len(imgs) != 1 || len(imgs[0].Aliases) != 1 || imgs[0].Aliases[0].Name != "busybox" {
		t.Fatalf("image list: %+v", imgs)
	}
	fp := imgs[0].Fingerprint
	mustOrch("image", "alias", "add", "bb", fp[:12])
	if out := mustOrch("image", "show", "bb"); !strings.Contains(out, fp) {
		t.Errorf("image show bb:\n%s", out)
	}
	mustOrch("image", "alias", "delete", "bb")
	r := e.orch("image", "show", "bb")
	if r.code == 0 || !strings.Contains(r.stderr, "member host1: image bb:") {
		t.Errorf("show of a deleted alias: exit %d, %q", r.code, r.stderr)
	}
	// A small second image, streamed to host2 itself.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tiny := filepath.Join(t.TempDir(), "tiny.tar.gz")
	if b, err := exec.Command("tar", "-czf", tiny, "-C", dir, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
	if out := mustOrch("image", "import", tiny, "--alias", "tiny", "--target", "host2"); !strings.HasPrefix(out, "Image imported with fingerprint: ") {
		t.Errorf("image import printed %q", out)
	}
	var tinyImg api.Image
	mustJSON(t, e, &tinyImg, "image", "show", "tiny", "--format", "json")
	if !slices.Contains(tinyImg.Members, "host2") {
		t.Errorf("tiny imported through host2 is not held there: %+v", tinyImg)
	}
	mustOrch("image", "delete", "tiny")
	mustOrch("profile", "create", "p2")
	if out := orchStdin(t, e, "description: edited\n", "profile", "edit", "p2"); out != "" {
		t.Errorf("profile edit printed %q", out)
	}
	if out := mustOrch("profile", "show", "p2"); !strings.Contains(out, "description: edited") {
		t.Errorf("profile show p2:\n%s", out)
	}
	if out := mustOrch("profile", "list"); !strings.Contains(out, "playprof") || !strings.Contains(out, "eth0,root") {
		t.Errorf("profile list:\n%s", out)
	}
	mustOrch("profile", "delete", "p2")
	mustOrch("remote", "add", "local", "http://127.0.0.1:9/")
	if out := mustOrch("remote", "list"); !strings.Contains(out, "http://127.0.0.1:9/") {
		t.Errorf("remote list:\n%s", out)
	}
	mustOrch("remote", "remove", "local")
}

// orchStdin is e.orch with stdin, failing the test on a non-zero exit.
func orchStdin(t *testing.T, e *env, stdin string, args ...string) string {
	t.Helper()
	e.writeInventory()
	full := append([]string{"-i", e.inv, "--known-hosts", e.known}, args...)
	cmd := exec.Command(bins.orch, full...)
	cmd.Env = append(os.Environ(), "ORCH_CONFIG="+e.state)
	cmd.Stdin = strings.NewReader(stdin)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("orch %v: %v\n%s%s", args, err, out, errb.String())
	}
	return string(out)
}
