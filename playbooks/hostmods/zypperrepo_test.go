package hostmods_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"orch/internal/shell"
	"orch/playbooks"
)

// bindHarness runs every host command in a private mount namespace where a copy of each
// of dirs is mounted over it, so that real tools (firewall-offline-cmd, zypper) edit the
// copies and never this machine's configuration. It returns the copies, in dirs' order.
func bindHarness(t *testing.T, tools []string, dirs ...string) (*harness, []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts real servers / drives real tools")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespace)")
	}
	for _, bin := range append([]string{"unshare"}, tools...) {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs it)", bin)
		}
	}
	h := newHarness(t)
	var copies []string
	mounts := ""
	for i, d := range dirs {
		c := filepath.Join(h.dir, "bind", strings.ReplaceAll(strings.Trim(d, "/"), "/", "_"))
		if err := os.MkdirAll(c, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(d); err == nil {
			if out, err := exec.Command("cp", "-a", d+"/.", c+"/").CombinedOutput(); err != nil {
				t.Fatalf("copy %s: %v\n%s", d, err, out)
			}
		}
		copies = append(copies, c)
		if i > 0 {
			mounts += " && "
		}
		mounts += "mount --bind " + shell.Quote(c) + " " + shell.Quote(d)
	}
	h.wrap = func(cmd string) string {
		return "unshare -m sh -c " + shell.Quote(mounts+" && exec sh -c \"$0\"") + " " + shell.Quote(cmd)
	}
	return h, copies
}

// TestZypperRepositoryWithZypper drives the real zypper (Debian's package) on copies of
// /etc/zypp and /var/cache/zypp: geerlingguy.nginx's repository task converges, a changed
// setting replaces the repository, state absent removes it.
func TestZypperRepositoryWithZypper(t *testing.T) {
	h, dirs := bindHarness(t, []string{"zypper"}, "/etc/zypp", "/var/cache/zypp")
	repoFile := filepath.Join(dirs[0], "repos.d", "nginx.repo")
	read := func() string { b, _ := os.ReadFile(repoFile); return string(b) }
	task := "zypper_repository:\n  name: nginx\n  repo: http://nginx.org/packages/sles/15\n  state: present\n  disable_gpg_check: true\n  autorefresh: true"
	h.converge(task)
	for _, want := range []string{"[nginx]", "baseurl=http://nginx.org/packages/sles/15", "gpgcheck=0", "autorefresh=1"} {
		if !strings.Contains(read(), want) {
			t.Fatalf("nginx.repo lacks %q:\n%s", want, read())
		}
	}
	h.converge(task + "\n  priority: 50")
	if !strings.Contains(read(), "priority=50") {
		t.Fatalf("priority not changed:\n%s", read())
	}
	h.converge("zypper_repository:\n  name: nginx\n  state: absent")
	if _, err := os.Stat(repoFile); !os.IsNotExist(err) {
		t.Fatalf("nginx.repo not removed: %v", err)
	}
	if o := h.run("zypper_repository:\n  name: x\n  state: present", false, false); o.status != playbooks.StatusFailed {
		t.Fatalf("present without repo: %s", o.status)
	}
}
