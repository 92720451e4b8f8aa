package hostmods_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/playbooks"
)

// startHAProxy runs a real HAProxy with an admin stats socket and a backend myapplb of two
// servers (no health checks), as ansible-examples' lamp_haproxy load balancer.
func startHAProxy(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: starts real servers / drives real tools")
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy not installed (scripts/install-deps.sh installs it)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "stats")
	cfg := fmt.Sprintf("global\n  stats socket %s level admin\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n"+
		"backend myapplb\n  server web1 127.0.0.1:9\n  server web2 127.0.0.1:10\nbackend other\n  server web1 127.0.0.1:11\n", sock)
	if err := os.WriteFile(filepath.Join(dir, "haproxy.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("haproxy", "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	server{name: "haproxy", log: filepath.Join(dir, "log"), stop: syscall.SIGTERM, grace: 10 * time.Second,
		within: 30 * time.Second, ready: func() error { _, err := os.Stat(sock); return err }}.start(t, cmd)
	return sock
}

// TestHAProxyAgainstHAProxy disables and enables a server as lamp_haproxy's rolling update
// does, drains one and sets a weight: each converges, read back from HAProxy's own stats.
func TestHAProxyAgainstHAProxy(t *testing.T) {
	sock := startHAProxy(t)
	h := newHarness(t)
	status := func(backend, server string) string {
		out, err := exec.Command("sh", "-c", "echo 'show stat' | socat stdio unix-connect:"+sock+" | awk -F, -v b="+backend+" -v s="+server+" '$1==b && $2==s {print $18 \" \" $19}'").CombinedOutput()
		if err != nil {
			t.Fatalf("show stat: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	h.converge("haproxy: 'state=disabled backend=myapplb host=web1 socket=" + sock + "'")
	if got := status("myapplb", "web1"); !strings.HasPrefix(got, "MAINT") {
		t.Fatalf("web1 after disabled: %q", got)
	}
	if got := status("other", "web1"); strings.HasPrefix(got, "MAINT") {
		t.Fatalf("web1 of another backend disabled too: %q", got)
	}
	h.converge("haproxy: 'state=enabled backend=myapplb host=web1 socket=" + sock + " wait=yes wait_interval=1'")
	if got := status("myapplb", "web1"); strings.HasPrefix(got, "MAINT") {
		t.Fatalf("web1 after enabled: %q", got)
	}
	// without backend: every backend holding the host
	h.converge("haproxy:\n  state: drain\n  host: web1\n  socket: " + sock)
	if a, b := status("myapplb", "web1"), status("other", "web1"); !strings.HasPrefix(a, "DRAIN") || !strings.HasPrefix(b, "DRAIN") {
		t.Fatalf("drain: %q %q", a, b)
	}
	h.converge("haproxy:\n  state: enabled\n  host: web2\n  backend: myapplb\n  weight: 10\n  socket: " + sock)
	if got := status("myapplb", "web2"); !strings.HasSuffix(got, " 10") {
		t.Fatalf("web2 weight: %q", got)
	}
	if o := h.run("haproxy: state=disabled host=nosuch fail_on_not_found=yes socket="+sock, false, false); o.status != playbooks.StatusFailed {
		t.Fatalf("unknown host with fail_on_not_found: %s", o.status)
	}
	if o := h.run("haproxy: state=disabled host=web1 socket=/nonexistent/sock", false, false); o.status != playbooks.StatusFailed {
		t.Fatalf("no socket: %s", o.status)
	}
}
