package orchup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orch/integration/lab"
)

// TestPlayOnRealHosts runs a user playbook with `orch play` over real SSH: files, templates,
// creates, loops, register/when, run_once, delegate_to, until/retries, block/rescue/always,
// handlers, wait_for, -e, tags; then --check changes nothing and a re-run is idempotent.
func TestPlayOnRealHosts(t *testing.T) {
	e := newEnv(t, 2)
	wd, _ := os.Getwd()
	site := filepath.Join(wd, "testdata/site.yml")

	r := e.orch("play", site, "--check")
	if r.code != 0 {
		t.Fatalf("--check exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := e.lab.Host("host1").Exec(t.Context(), "test", "-e", "/var/lib/nodeagent/orch-play"); err == nil {
		t.Fatal("--check created /var/lib/nodeagent/orch-play")
	}

	r = e.orch("play", site, "-e", "extra_word=bonjour")
	if r.code != 0 {
		t.Fatalf("play exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	read := func(host, path string) string {
		t.Helper()
		out, err := e.lab.Host(host).Exec(t.Context(), "cat", path)
		if err != nil {
			t.Fatalf("%s: cat %s: %v %s", host, path, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	checks := map[string]string{
		"/var/lib/nodeagent/orch-play/greeting.txt": "hello from host2",
		"/var/lib/nodeagent/orch-play/motd":         "HELLO on host2",
		"/var/lib/nodeagent/orch-play/items":        "a\nb\nc",
		"/var/lib/nodeagent/orch-play/when":         "matched",
		"/var/lib/nodeagent/orch-play/count":        "3",
		"/var/lib/nodeagent/orch-play/rescue":       "rescued",
		"/var/lib/nodeagent/orch-play/always":       "always",
		"/var/lib/nodeagent/orch-play/extra":        "bonjour",
		"/var/lib/nodeagent/orch-play/handler.log":  "restarted",
	}
	for path, want := range checks {
		if got := read("host2", path); got != want {
			t.Errorf("host2 %s = %q, want %q", path, got, want)
		}
	}
	if got := read("host1", "/var/lib/nodeagent/orch-play/once"); got != "host1" {
		t.Errorf("run_once ran as %q, want host1", got)
	}
	if _, err := e.lab.Host("host2").Exec(t.Context(), "test", "-e", "/var/lib/nodeagent/orch-play/once"); err == nil {
		t.Error("run_once also ran on host2")
	}
	if got := read("host1", "/var/lib/nodeagent/orch-play/delegated-host2"); got != "from-host2" {
		t.Errorf("delegate_to: host1 has %q", got)
	}
	if _, err := e.lab.Host("host2").Exec(t.Context(), "test", "-e", "/var/lib/nodeagent/orch-play/never"); err == nil {
		t.Error("a task tagged never ran")
	}
	if !strings.Contains(r.stdout, "rescued=1") {
		t.Errorf("recap does not count the rescue:\n%s", r.stdout)
	}

	// Idempotence of the declarative modules: copy, template, file and creates change nothing.
	r = e.orch("play", site, "--skip-tags", "loop", "--limit", "host2", "--diff")
	if r.code != 0 {
		t.Fatalf("re-run exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, task := range []string{"Write a file from content", "Render a template", "Make a directory", "Command with creates"} {
		if block := taskBlock(r.stdout, task); strings.Contains(block, "changed:") {
			t.Errorf("re-run changed %q:\n%s", task, block)
		}
	}
	if got := read("host2", "/var/lib/nodeagent/orch-play/handler.log"); got != "restarted" {
		t.Errorf("handler ran again without a change: %q", got)
	}

	r = e.orch("play", site, "--list-tasks")
	if r.code != 0 || !strings.Contains(r.stdout, "Retry until a condition holds") {
		t.Fatalf("--list-tasks: %d\n%s", r.code, r.stdout)
	}
}

// taskBlock returns the output lines of one TASK section.
func taskBlock(out, task string) string {
	i := strings.Index(out, "TASK ["+task)
	if i < 0 {
		return ""
	}
	rest := out[i+1:]
	if j := strings.Index(rest, "\nTASK ["); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestPlayGathersFacts runs, over real SSH, a playbook that says nothing about facts: orch
// gathers them first (one command per host) and the tasks use ansible_facts, ansible_*,
// Jinja statements in a template file, Python methods, tuples and % formatting.
func TestPlayGathersFacts(t *testing.T) {
	e := newEnv(t, 2)
	wd, _ := os.Getwd()
	r := e.orch("play", filepath.Join(wd, "testdata/facts/site.yml"))
	if r.code != 0 {
		t.Fatalf("play exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "TASK [Gathering Facts]") {
		t.Errorf("no Gathering Facts task:\n%s", r.stdout)
	}
	out, err := e.lab.Host("host2").Exec(t.Context(), "cat", "/var/lib/nodeagent/orch-facts.txt")
	if err != nil {
		t.Fatalf("%v %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "host2 ") || lines[1] != "port 80" || lines[2] != "port 443 tls" {
		t.Errorf("report = %q", out)
	}
	ports, err := e.lab.Host("host1").Exec(t.Context(), "cat", "/var/lib/nodeagent/orch-facts-ports")
	if err != nil || strings.TrimSpace(string(ports)) != "80\n443" {
		t.Errorf("include_tasks loop wrote %q (%v)", ports, err)
	}
}

// TestPlayRebootsDebianHost runs `orch play` with the reboot module on a Debian host booted
// by systemd: the host reboots (a new init), orch reconnects over a new SSH connection and
// the next task runs; the recap counts the reboot as changed.
func TestPlayRebootsDebianHost(t *testing.T) {
	e := newEnv(t, 1, lab.WithOS(lab.OSDebian))
	initStart := func() string {
		out, err := e.lab.Host("host1").Exec(t.Context(), "sh", "-c", "cut -d' ' -f22 /proc/1/stat")
		if err != nil {
			t.Fatalf("%v %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	before := initStart()
	site := filepath.Join(e.dir, "reboot.yml")
	play := "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.reboot: {reboot_timeout: 120}\n" +
		"    - ansible.builtin.copy: {dest: /root/after-reboot, content: \"ok\\n\"}\n"
	if err := os.WriteFile(site, []byte(play), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.orch("play", site)
	if r.code != 0 {
		t.Fatalf("play exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after := initStart(); after == before {
		t.Errorf("init started at %s before and after: not rebooted", before)
	}
	if !strings.Contains(r.stdout, "changed=2") {
		t.Errorf("recap:\n%s", r.stdout)
	}
	if out, err := e.lab.Host("host1").Exec(t.Context(), "cat", "/root/after-reboot"); err != nil || string(out) != "ok\n" {
		t.Errorf("the task after the reboot: %q %v", out, err)
	}
}
