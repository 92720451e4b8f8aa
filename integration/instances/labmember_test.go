package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// labMember is a nodeagent daemon running inside a lab host (its network and mount
// namespaces): the pools it mounts, the bridges and dnsmasq it makes and the containers it
// starts stay inside that host, and die with it when the lab closes.
type labMember struct {
	t    *testing.T
	h    *lab.Host
	name string
	dir  string // the agent directory as the root namespace sees it
	pid  int
}

// startLabMember starts a daemon in host h (agent directory /var/lib/nodeagent there) and
// waits until its socket answers.
func startLabMember(t *testing.T, h *lab.Host, name string) *labMember {
	t.Helper()
	dir, ok := h.Path("/var/lib/nodeagent")
	if !ok {
		t.Fatalf("%s: /var/lib/nodeagent is not a private directory of the host", h.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := fmt.Sprintf("%s daemon --dir /var/lib/nodeagent --raft-heartbeat %s --raft-election %s --raft-leader-lease %s >>/var/lib/nodeagent/daemon.log 2>&1 & echo $!",
		agentBin, raftTiming, raftTiming, raftTiming)
	out, err := h.Exec(ctx, "sh", "-c", cmd)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("%s: daemon pid %q", h.Name, out)
	}
	m := &labMember{t: t, h: h, name: name, dir: dir, pid: pid}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) }) // the lab kills the rest of the host
	cl := api.NewUnixClient(filepath.Join(dir, "unix.socket"))
	defer cl.Close()
	wait.For(t, 15*time.Second, name+" answering", func() error {
		_, _, err := cl.Server(ctx)
		return err
	})
	return m
}

// run runs the nodeagent CLI against the member's socket from the root namespace.
func (m *labMember) run(stdin string, args ...string) runResult {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBin, append([]string{"--dir", m.dir}, args...)...)
	cmd.Env = agentEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return runResult{Stdout: so.String(), Stderr: se.String(), Code: code}
}

// mustRun runs the CLI with stdin and fails the test unless it exits 0; it returns stdout.
func (m *labMember) mustRun(stdin string, args ...string) string {
	m.t.Helper()
	r := m.run(stdin, args...)
	if r.Code != 0 {
		m.t.Fatalf("%s: nodeagent %s: exit %d: %s", m.name, strings.Join(args, " "), r.Code, strings.TrimSpace(r.Stderr))
	}
	return r.Stdout
}

// exec runs a command inside the member's host and returns its combined output.
func (m *labMember) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := m.h.Exec(ctx, args...)
	return string(out), err
}

// list is `list --format json` on the member.
func (m *labMember) list() []api.Instance {
	m.t.Helper()
	var out []api.Instance
	must(m.t, json.Unmarshal([]byte(m.mustRun("", "list", "--format", "json")), &out))
	return out
}

// poolCreatedEverywhere waits until pool's part is Created on every member.
func poolCreatedEverywhere(t *testing.T, via *labMember, pool string, ms []*labMember) {
	t.Helper()
	wait.For(t, 60*time.Second, "pool "+pool+" created on every member", func() error {
		for _, m := range ms {
			var p api.StoragePoolInfo
			r := via.run("", "storage", "show", pool, "--target", m.name, "--format", "json")
			if r.Code != 0 {
				return fmt.Errorf("storage show %s --target %s: %s", pool, m.name, r.Stderr)
			}
			if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
				return err
			}
			if p.Status != api.StatusCreated {
				return fmt.Errorf("%s on %s: %s %s", pool, m.name, p.Status, p.Message)
			}
		}
		return nil
	})
}

// wantFailure fails the test unless r failed with every substring in its stderr.
func wantFailure(t *testing.T, r runResult, substrings ...string) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("command succeeded, want an error containing %q:\n%s", substrings, r.Stdout)
	}
	for _, s := range substrings {
		if !strings.Contains(r.Stderr, s) {
			t.Fatalf("error %q does not contain %q", strings.TrimSpace(r.Stderr), s)
		}
	}
}
