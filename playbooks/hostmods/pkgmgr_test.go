package hostmods_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/playbooks"
)

// pacmanRepo builds a pacman package "hello" of version ver (a real .pkg.tar.gz with its
// .PKGINFO) into repo and (re)indexes the repository with repo-add.
func pacmanRepo(t *testing.T, repo, ver string) {
	t.Helper()
	build := t.TempDir()
	files := filepath.Join(build, "usr", "share", "hello")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files, "hello.txt"), []byte(ver+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	info := fmt.Sprintf("pkgname = hello\npkgbase = hello\npkgver = %s-1\npkgdesc = test\nurl = none\nbuilddate = 1700000000\npackager = test\nsize = 4\narch = any\nlicense = MIT\n", ver)
	if err := os.WriteFile(filepath.Join(build, ".PKGINFO"), []byte(info), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(repo, "hello-"+ver+"-1-any.pkg.tar.gz")
	for _, argv := range [][]string{{"tar", "-C", build, "-czf", pkg, ".PKGINFO", "usr"}, {"repo-add", filepath.Join(repo, "testrepo.db.tar.gz"), pkg}} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}
}

// TestPacmanOnLocalRepository runs community.general.pacman's states against the real
// pacman (Debian's pacman-package-manager) on a root of its own with a file:// repository
// holding a package built here: `executable` (the module's own argument, meant for AUR
// helpers) is a script adding --root/--config, so nothing of this machine is touched.
func TestPacmanOnLocalRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts real servers / drives real tools")
	}
	for _, bin := range []string{"pacman", "repo-add", "bsdtar"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs pacman-package-manager and libarchive-tools)", bin)
		}
	}
	h := newHarness(t)
	root, repo := filepath.Join(h.dir, "root"), filepath.Join(h.dir, "repo")
	for _, d := range []string{filepath.Join(root, "var", "lib", "pacman"), filepath.Join(root, "var", "cache", "pacman", "pkg"), repo} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pacmanRepo(t, repo, "1.0")
	// pacman -Sy fetches a file:// database only when it is newer than its copy, to the
	// second: the 1.1 database built below may fall in the same second as this one.
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(repo, "testrepo.db.tar.gz"), hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	conf := h.write("pacman.conf", "[options]\nArchitecture = auto\nSigLevel = Never\nLocalFileSigLevel = Never\n[testrepo]\nServer = file://"+repo+"\n")
	wrapper := h.write("pacman-test", fmt.Sprintf("#!/bin/sh\nexec pacman --root %s --dbpath %s/var/lib/pacman --cachedir %s/var/cache/pacman/pkg --config %s \"$@\"\n", root, root, root, conf))
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := "\n  executable: " + wrapper
	hello := filepath.Join(root, "usr", "share", "hello", "hello.txt")
	content := func() string { b, _ := os.ReadFile(hello); return strings.TrimSpace(string(b)) }

	if o := h.run("pacman:\n  update_cache: true"+exe, false, false); o.status != playbooks.StatusChanged {
		t.Fatalf("update_cache: %s\n%s", o.status, o.out)
	}
	h.converge("pacman:\n  name: hello\n  state: present" + exe)
	if content() != "1.0" {
		t.Fatalf("hello 1.0 not installed: %q", content())
	}
	pacmanRepo(t, repo, "1.1")
	h.run("pacman:\n  update_cache: true"+exe, false, false)
	if o := h.run("pacman:\n  name: hello\n  state: present"+exe, false, false); o.status != playbooks.StatusOK {
		t.Fatalf("present with a newer version in the repository: %s, want ok\n%s", o.status, o.out)
	}
	h.converge("pacman:\n  name: hello\n  state: latest" + exe)
	if content() != "1.1" {
		t.Fatalf("hello not upgraded to 1.1: %q", content())
	}
	h.converge("pacman:\n  name: [hello]\n  state: absent" + exe)
	if _, err := os.Stat(hello); !os.IsNotExist(err) {
		t.Fatalf("hello not removed: %v", err)
	}
	o := h.run("pacman:\n  name: nosuchpkg"+exe, false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "nosuchpkg") {
		t.Fatalf("an unknown package: %s %q", o.status, o.res.Msg)
	}
	o = h.run("pacman:\n  name: hello\n  executable: /nonexistent/pacman", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "/nonexistent/pacman not found on the host") {
		t.Fatalf("no pacman: %s %q", o.status, o.res.Msg)
	}
}
