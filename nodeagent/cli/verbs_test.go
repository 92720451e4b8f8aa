package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon"
	"orch/nodeagent/store"
)

// agent is a real daemon in a temporary directory and the CLI pointed at it.
type agent struct {
	t   *testing.T
	dir string
	// stop stops the daemon (also done in cleanup); the directory stays.
	stop func()
}

// startAgent starts a daemon in-process and bootstraps it as member n1 with a dir pool,
// through the CLI's own waitready and init --preseed.
func startAgent(t *testing.T) *agent {
	t.Helper()
	dir := t.TempDir()
	timings := store.DefaultTimings()
	timings.Heartbeat, timings.Election, timings.LeaderLease, timings.Commit = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond
	d, err := daemon.New(daemon.Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timings: timings})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	a := &agent{t: t, dir: dir, stop: stop}
	a.mustRun("", "waitready", "--timeout", "20")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	preseed := "config:\n  core.https_address: " + addr + "\nstorage_pools:\n- name: default\n  driver: dir\n" +
		"cluster:\n  server_name: n1\n  enabled: true\n"
	a.mustRun(preseed, "init", "--preseed")
	return a
}

// run runs the CLI against the agent with stdin and returns its exit code and outputs.
func (a *agent) run(stdin string, args ...string) (int, string, string) {
	a.t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"--dir", a.dir}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// mustRun is run that fails the test unless the command exits 0; it returns stdout.
func (a *agent) mustRun(stdin string, args ...string) string {
	a.t.Helper()
	code, out, errb := a.run(stdin, args...)
	if code != 0 {
		a.t.Fatalf("nodeagent %s: exit %d: %s%s", strings.Join(args, " "), code, out, errb)
	}
	return out
}

// TestVerbsAgainstAgent drives the shared cluster verbs as the agent CLI mounts them,
// against a real one-member cluster: members, config (a negative value, as the guide's
// `config set cluster.images_minimal_replica -1`), tokens, volumes, profiles, trust, and
// the errors of a --target that is not this member and of an unknown instance.
func TestVerbsAgainstAgent(t *testing.T) {
	a := startAgent(t)
	if out := a.mustRun("", "cluster", "list"); !strings.Contains(out, "| n1 ") || !strings.Contains(out, "NAME") {
		t.Errorf("cluster list:\n%s", out)
	}
	// LXD's columns, the architecture recorded by the member itself, and cluster edit
	// taking cluster show's output back.
	wait.For(t, 20*time.Second, "n1's architecture", func() error {
		var m api.ClusterMember
		if err := json.Unmarshal([]byte(a.mustRun("", "cluster", "show", "n1", "--format", "json")), &m); err != nil {
			return err
		}
		if m.Architecture == "" || m.FailureDomain != "default" {
			return fmt.Errorf("%+v", m)
		}
		return nil
	})
	shown := a.mustRun("", "cluster", "show", "n1")
	edited := strings.NewReplacer("failure_domain: default", "failure_domain: rack1", `description: ""`, "description: first member").Replace(shown)
	a.mustRun(edited, "cluster", "edit", "n1")
	out := a.mustRun("", "cluster", "list")
	for _, want := range []string{"ARCHITECTURE", "FAILURE DOMAIN", "DESCRIPTION", machineName(t), "rack1", "first member"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster list has no %q:\n%s", want, out)
		}
	}
	if code, _, errb := a.run("server_name: n2\n", "cluster", "edit", "n1"); code != 1 || !strings.Contains(errb, `"n2" differs`) {
		t.Errorf("cluster edit n1 with n2's YAML: exit %d, %q", code, errb)
	}
	if code, _, errb := a.run("description: x\n", "cluster", "edit", "n9"); code != 1 || !strings.Contains(errb, "n9") {
		t.Errorf("cluster edit n9: exit %d, %q", code, errb)
	}

	a.mustRun("", "config", "set", "cluster.images_minimal_replica", "-1")
	if out := a.mustRun("", "config", "get", "cluster.images_minimal_replica"); out != "-1\n" {
		t.Errorf("config get after set -1: %q", out)
	}
	a.mustRun("", "config", "set", "cluster.images_minimal_replica=2")
	if out := a.mustRun("", "config", "show", "--format", "json"); !strings.Contains(out, `"cluster.images_minimal_replica": "2"`) {
		t.Errorf("config show:\n%s", out)
	}

	if tok := a.mustRun("", "cluster", "add", "n2"); len(strings.TrimSpace(tok)) < 20 {
		t.Errorf("cluster add printed %q", tok)
	}
	if out := a.mustRun("", "cluster", "list-tokens"); !strings.Contains(out, "n2") {
		t.Errorf("list-tokens:\n%s", out)
	}
	a.mustRun("", "cluster", "revoke-token", "n2")
	if out := a.mustRun("", "cluster", "list-tokens", "--format", "json"); strings.Contains(out, "n2") {
		t.Errorf("after revoke-token:\n%s", out)
	}

	if out := a.mustRun("", "storage", "volume", "create", "default", "v1"); !strings.Contains(out, "v1 created on n1") {
		t.Errorf("volume create: %q", out)
	}
	var vols []api.StorageVolume
	if err := json.Unmarshal([]byte(a.mustRun("", "storage", "volume", "list", "default", "--format", "json")), &vols); err != nil || len(vols) != 1 || vols[0].Name != "v1" {
		t.Errorf("volume list: %v %+v", err, vols)
	}
	a.mustRun("", "storage", "volume", "delete", "default", "v1")

	a.mustRun("description: web\n", "profile", "create", "web", "--stdin")
	if out := a.mustRun("", "profile", "show", "web", "--format", "json"); !strings.Contains(out, `"description": "web"`) {
		t.Errorf("profile show:\n%s", out)
	}
	a.mustRun("", "profile", "delete", "web")
	if out := a.mustRun("", "trust", "list"); !strings.Contains(out, "FINGERPRINT") {
		t.Errorf("trust list:\n%s", out)
	}

	code, _, errb := a.run("", "image", "import", os.Args[0], "--target", "n9")
	if code != 1 || !strings.Contains(errb, "--target n9") || !strings.Contains(errb, "(n1)") {
		t.Errorf("image import --target n9 via n1's socket: exit %d, %q", code, errb)
	}
	code, _, errb = a.run("", "delete", "nosuch")
	if code != 1 || strings.Count(errb, "nosuch") != 1 {
		t.Errorf("delete nosuch: exit %d, %q (the name once)", code, errb)
	}
}

// machineName is uname -m.
func machineName(t *testing.T) string {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestNoDaemon: a verb on a directory where no daemon runs says so and how to start one,
// instead of an HTTP dial error.
func TestNoDaemon(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := Main([]string{"--dir", dir, "cluster", "list"}, strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "no daemon listens there") || !strings.Contains(errb.String(), "nodeagent daemon --dir "+dir) {
		t.Errorf("cluster list without a daemon: exit %d, %q", code, errb.String())
	}
}
