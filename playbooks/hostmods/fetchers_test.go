package hostmods_test

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"orch/playbooks"
)

// serve starts an HTTP server on 127.0.0.1 serving files by path.
func serve(t *testing.T, files map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func requireTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install %s)", tool, tool)
		}
	}
}

// TestGetURL: a download converges (force=no: an existing dest is kept), a checksum makes a
// changed source replace dest and a wrong one fails, force=yes replaces on change only, a
// 404 fails.
func TestGetURL(t *testing.T) {
	requireTool(t, "curl")
	files := map[string]string{"/a.txt": "version 1\n"}
	url := serve(t, files)
	h := newHarness(t)
	first := h.converge("get_url: {url: '" + url + "/a.txt', dest: '{{ d }}/a.txt', mode: '0640'}")
	if got := h.read("a.txt"); got != "version 1\n" {
		t.Fatalf("downloaded %q", got)
	}
	if first.res.Data["dest"] != filepath.Join(h.dir, "a.txt") || first.res.Data["status_code"] != 200 || first.res.Data["mode"] != "0640" {
		t.Errorf("result: %v", first.res.Data)
	}
	if fi, _ := os.Stat(filepath.Join(h.dir, "a.txt")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	files["/a.txt"] = "version 2\n"
	if o := h.run("get_url: {url: '"+url+"/a.txt', dest: '{{ d }}/a.txt'}", false, false); o.status != playbooks.StatusOK {
		t.Errorf("force=no with dest present: %s", o.status)
	}
	h.converge("get_url: {url: '" + url + "/a.txt', dest: '{{ d }}/a.txt', force: true}")
	if got := h.read("a.txt"); got != "version 2\n" {
		t.Fatalf("force=yes: %q", got)
	}
	files["/b.txt"] = "b\n"
	h.converge("get_url: {url: '" + url + "/b.txt', dest: '{{ d }}', checksum: 'sha256:0263829989b6fd954f72baaf2fc64bc2e2f01d692d4de72986ea808f6e99813f'}")
	if got := h.read("b.txt"); got != "b\n" {
		t.Fatalf("download into a directory: %q", got)
	}
	o := h.run("get_url: {url: '"+url+"/b.txt', dest: '{{ d }}/c.txt', checksum: 'sha256:0000'}", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "did not match") {
		t.Errorf("wrong checksum: %s %q", o.status, o.res.Msg)
	}
	o = h.run("get_url: {url: '"+url+"/missing', dest: '{{ d }}/m.txt'}", false, false)
	if o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "Request failed") {
		t.Errorf("404: %s %q", o.status, o.res.Msg)
	}
}

// TestUnarchive: a tar.gz and a zip from the controller unpack once; a file changed in dest
// is restored on the next run.
func TestUnarchive(t *testing.T) {
	requireTool(t, "tar", "unzip")
	h := newHarness(t)
	writeTarGz(t, filepath.Join(h.dir, "files", "app.tar.gz"), map[string]string{"app/bin/run": "#!/bin/sh\n", "app/README": "hi\n"})
	if err := os.Mkdir(filepath.Join(h.dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	first := h.converge("unarchive: {src: files/app.tar.gz, dest: '{{ d }}/out', list_files: true}")
	if got := h.read("out/app/README"); got != "hi\n" {
		t.Fatalf("README: %q", got)
	}
	if files, _ := first.res.Data["files"].([]any); len(files) != 4 {
		t.Errorf("files: %v", first.res.Data["files"])
	}
	h.write("out/app/README", "edited\n")
	if o := h.run("unarchive: {src: files/app.tar.gz, dest: '{{ d }}/out'}", false, false); o.status != playbooks.StatusChanged || h.read("out/app/README") != "hi\n" {
		t.Errorf("edited file not restored: %s %q", o.status, h.read("out/app/README"))
	}
	writeZip(t, filepath.Join(h.dir, "app.zip"), map[string]string{"z/one": "1\n"})
	h.converge("unarchive: {src: '{{ d }}/app.zip', dest: '{{ d }}/out', remote_src: true}")
	if got := h.read("out/z/one"); got != "1\n" {
		t.Fatalf("zip: %q", got)
	}
	if o := h.run("unarchive: {src: files/app.tar.gz, dest: '{{ d }}/nodir'}", false, false); o.status != playbooks.StatusFailed {
		t.Errorf("missing dest: %s", o.status)
	}
}

func writeTarGz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	dirs := map[string]bool{}
	for name, body := range files {
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeZip(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGit: a local repository is cloned, a new commit on its branch is pulled, a tag is
// checked out, and local changes stop an update unless force.
func TestGit(t *testing.T) {
	requireTool(t, "git")
	h := newHarness(t)
	repo := filepath.Join(h.dir, "repo")
	gitRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	gitRun("init", "-q", "-b", "main")
	h.write("repo/f", "1\n")
	gitRun("add", "f")
	gitRun("commit", "-q", "-m", "one")
	gitRun("tag", "v1")
	one := gitRun("rev-parse", "HEAD")
	task := "git: {repo: '" + repo + "', dest: '{{ d }}/clone', version: main}"
	first := h.converge(task)
	if first.res.Data["after"] != one || first.res.Data["before"] != nil {
		t.Errorf("clone result: %v", first.res.Data)
	}
	h.write("repo/f", "2\n")
	gitRun("commit", "-q", "-am", "two")
	two := gitRun("rev-parse", "HEAD")
	o := h.converge(task)
	if o.res.Data["before"] != one || o.res.Data["after"] != two || h.read("clone/f") != "2\n" {
		t.Errorf("update: %v, f=%q", o.res.Data, h.read("clone/f"))
	}
	h.converge("git: {repo: '" + repo + "', dest: '{{ d }}/clone', version: v1}")
	if h.read("clone/f") != "1\n" {
		t.Errorf("tag checkout: f=%q", h.read("clone/f"))
	}
	h.write("clone/f", "local\n")
	if o := h.run(task, false, false); o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "Local modifications exist") {
		t.Errorf("local changes: %s %q", o.status, o.res.Msg)
	}
	if o := h.run("git: {repo: '"+repo+"', dest: '{{ d }}/clone', version: main, force: true}", false, false); o.status != playbooks.StatusChanged || h.read("clone/f") != "2\n" {
		t.Errorf("force: %s f=%q", o.status, h.read("clone/f"))
	}
}

// TestScript: a controller script runs on the host with its arguments, always changed
// (as command), skipped with creates= once it made the file, and not run under --check.
func TestScript(t *testing.T) {
	h := newHarness(t)
	h.write("files/mk.sh", "#!/bin/sh\necho \"made $1\" > \"$2\"\necho done\n")
	task := "script: mk.sh one {{ d }}/made creates={{ d }}/made"
	if o := h.run(task, true, false); o.status != playbooks.StatusChanged {
		t.Fatalf("--check: %s", o.status)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "made")); err == nil {
		t.Fatal("--check ran the script")
	}
	o := h.run(task, false, false)
	if o.status != playbooks.StatusChanged || o.res.Data["stdout"] != "done\n" || h.read("made") != "made one\n" {
		t.Fatalf("run: %s %v %q", o.status, o.res.Data, h.read("made"))
	}
	if o := h.run(task, false, false); o.status != playbooks.StatusSkipped {
		t.Fatalf("creates: %s", o.status)
	}
	h.write("files/fail.sh", "#!/bin/sh\nexit 3\n")
	if o := h.run("script: fail.sh", false, false); o.status != playbooks.StatusFailed || o.res.Data["rc"] != 3 {
		t.Fatalf("failing script: %s %v", o.status, o.res.Data)
	}
}

// TestCronFileAndSysctlFile: cron in a cron_file and sysctl in a sysctl_file, without
// touching this machine's crontab or kernel.
func TestCronFileAndSysctlFile(t *testing.T) {
	h := newHarness(t)
	h.converge("cron: {name: backup, hour: '2', minute: '0', job: /usr/bin/backup, user: root, cron_file: '{{ d }}/cron'}")
	if got := h.read("cron"); got != "#Ansible: backup\n0 2 * * * root /usr/bin/backup\n" {
		t.Errorf("cron file %q", got)
	}
	h.converge("cron: {name: PATH, env: true, job: /bin, user: root, cron_file: '{{ d }}/cron'}")
	h.converge("cron: {name: backup, state: absent, cron_file: '{{ d }}/cron'}")
	if got := h.read("cron"); got != "PATH=/bin\n" {
		t.Errorf("cron file %q", got)
	}
	h.write("sysctl.conf", "# x\nvm.swappiness = 60\n")
	h.converge("sysctl: {name: vm.swappiness, value: '10', sysctl_file: '{{ d }}/sysctl.conf', reload: false}")
	if got := h.read("sysctl.conf"); got != "# x\nvm.swappiness=10\n" {
		t.Errorf("sysctl file %q", got)
	}
}
