// Package orchup tests `orch up` end to end: the real orch and nodeagent binaries, test
// hosts made of network namespaces with their own OpenSSH sshd (integration/lab).
package orchup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// bins are the binaries under test, built once by TestMain (agenttest.Main).
var bins struct{ orch, agent string }

func TestMain(m *testing.M) {
	os.Exit(agenttest.Main(m, func() error {
		bins.agent, bins.orch = agenttest.Bin(), filepath.Join(agenttest.BinDir(), "orch")
		return agenttest.Build(bins.orch, "./orchestrator/cmd/orch", agenttest.BuildOptions{})
	}))
}

// env is one test's lab, inventory and orch state.
type env struct {
	t     *testing.T
	lab   *lab.Lab
	dir   string
	inv   string
	state string
	vars  map[string]map[string]string // per-host inventory vars
	all   map[string]string            // [all:vars]
	known string
}

func newEnv(t *testing.T, n int, opts ...lab.Option) *env {
	t.Helper()
	lab.Require(t)
	l := lab.New(t, n, opts...)
	e := &env{t: t, lab: l, dir: t.TempDir(), vars: map[string]map[string]string{}, all: map[string]string{},
		known: l.KnownHostsFile()}
	e.inv, e.state = filepath.Join(e.dir, "inventory.ini"), filepath.Join(e.dir, "state")
	for _, h := range l.Hosts() {
		e.addHost(h)
		if log, ok := h.Path("/var/lib/nodeagent/logs/nodeagent.log"); ok && h.OS() == lab.OSNamespace {
			l.LogFile(log) // Debian hosts log to their journal, which the lab dumps
		}
	}
	return e
}

func (e *env) addHost(h *lab.Host) {
	e.vars[h.Name] = map[string]string{"ansible_host": h.Addr, "ansible_user": "root",
		"ansible_ssh_private_key_file": e.lab.KeyFile()}
}

// writeInventory writes the inventory from e.vars and e.all, hosts in name order.
func (e *env) writeInventory() {
	e.t.Helper()
	var b strings.Builder
	for _, h := range e.lab.Hosts() {
		v, ok := e.vars[h.Name]
		if !ok {
			continue
		}
		b.WriteString(h.Name)
		for _, k := range sortedKeys(v) {
			fmt.Fprintf(&b, " %s=%s", k, v[k])
		}
		b.WriteString("\n")
	}
	if len(e.all) > 0 {
		b.WriteString("\n[all:vars]\n")
		for _, k := range sortedKeys(e.all) {
			fmt.Fprintf(&b, "%s=%s\n", k, e.all[k])
		}
	}
	if err := os.WriteFile(e.inv, []byte(b.String()), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}

// result is one orch run.
type result struct {
	code           int
	stdout, stderr string
}

// orch runs the orch binary with the env's inventory, state and known_hosts.
func (e *env) orch(args ...string) result {
	e.t.Helper()
	e.writeInventory()
	return e.orchWith(e.inv, args...)
}

// orchWith runs the orch binary with the inventory inv and the env's state and known_hosts.
func (e *env) orchWith(inv string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append([]string{"-i", inv, "--known-hosts", e.known}, args...)
	cmd := exec.CommandContext(ctx, bins.orch, full...)
	cmd.Env = append(os.Environ(), "ORCH_CONFIG="+e.state)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("orch %v: %v", args, err)
	}
	return r
}

func (e *env) up(extra ...string) result {
	e.t.Helper()
	return e.orch(append([]string{"up", "--agent", bins.agent}, extra...)...)
}

func (e *env) mustUp(extra ...string) result {
	e.t.Helper()
	r := e.up(extra...)
	if r.code != 0 {
		e.t.Fatalf("orch up exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// members lists the cluster through orch's API client.
func (e *env) members() []api.ClusterMember {
	e.t.Helper()
	ms, err := e.tryMembers()
	if err != nil {
		e.t.Fatal(err)
	}
	return ms
}

// tryMembers is `orch cluster list --format json`, its failure an error.
func (e *env) tryMembers() ([]api.ClusterMember, error) {
	r := e.orch("cluster", "list", "--format", "json")
	if r.code != 0 {
		return nil, fmt.Errorf("orch cluster list exited %d: %s%s", r.code, r.stdout, r.stderr)
	}
	var ms []api.ClusterMember
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil {
		return nil, fmt.Errorf("cluster list output: %v\n%s", err, r.stdout)
	}
	return ms, nil
}

// waitMembers waits until the members satisfy cond, reporting the last list or error. A
// failing list is retried: right after a member dies the survivors may still be electing
// a leader.
func (e *env) waitMembers(what string, cond func([]api.ClusterMember) bool) []api.ClusterMember {
	e.t.Helper()
	var ms []api.ClusterMember
	wait.ForEvery(e.t, 30*time.Second, 100*time.Millisecond, what, func() error {
		var err error
		if ms, err = e.tryMembers(); err != nil {
			return err
		}
		if !cond(ms) {
			return fmt.Errorf("members: %+v", ms)
		}
		return nil
	})
	return ms
}

func roleCount(ms []api.ClusterMember, role string) int {
	n := 0
	for _, m := range ms {
		for _, r := range m.Roles {
			if r == role {
				n++
			}
		}
	}
	return n
}

func allOnline(ms []api.ClusterMember) bool {
	for _, m := range ms {
		if m.Status != api.StatusOnline {
			return false
		}
	}
	return true
}
