package orchup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
	"orch/orchestrator/clientstore"
)

// buildAgentB builds a newer agent: release 0.9.0 at API level 2.
func buildAgentB(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "nodeagent-b")
	ldflags := "-X orch/nodeagent/version.Version=0.9.0 -X orch/nodeagent/version.APILevel=2"
	if err := agenttest.Build(out, agenttest.AgentPkg, agenttest.BuildOptions{Flags: []string{"-ldflags", ldflags}}); err != nil {
		t.Fatal(err)
	}
	return out
}

// writer PATCHes distinct user.* keys through every member that serves, recording the
// acknowledged ones, until stopped.
type writer struct {
	mu    sync.Mutex
	acked map[string]string
	stop  chan struct{}
	done  sync.WaitGroup
}

func startWriter(t *testing.T, e *env) *writer {
	t.Helper()
	st, err := clientstore.Open(e.state)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{acked: map[string]string{}, stop: make(chan struct{})}
	for i, h := range e.lab.Hosts() {
		cl, err := st.ClientAny(h.Addr + ":8443")
		if err != nil {
			t.Fatal(err)
		}
		w.done.Add(1)
		go func(i int, cl *api.Client) {
			defer w.done.Done()
			defer cl.Close()
			for n := 0; ; n++ {
				select {
				case <-w.stop:
					return
				default:
				}
				k, v := fmt.Sprintf("user.w%d-%d", i, n), fmt.Sprint(n)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := cl.PatchConfig(ctx, map[string]string{k: v}, "")
				cancel()
				if err == nil {
					w.mu.Lock()
					w.acked[k] = v
					w.mu.Unlock()
				} else {
					time.Sleep(50 * time.Millisecond) // a member restarting or BLOCKED: try again shortly
				}
			}
		}(i, cl)
	}
	return w
}

func (w *writer) finish() map[string]string {
	close(w.stop)
	w.done.Wait()
	return w.acked
}

// checkWrites reads the config through a member and checks every acknowledged key.
func checkWrites(t *testing.T, e *env, acked map[string]string) {
	t.Helper()
	st, _ := clientstore.Open(e.state)
	cl, err := st.ClientAny(e.lab.Hosts()[0].Addr + ":8443")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s, _, err := cl.Server(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range acked {
		if s.Config[k] != v {
			t.Fatalf("acknowledged write %s=%s lost (got %q); %d acknowledged", k, v, s.Config[k], len(acked))
		}
	}
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged during the test: it proves nothing")
	}
}

// TestRollingUpgrade: a cluster on version A is upgraded to B while a client writes through
// the members that serve; members show BLOCKED during the roll, all are operational at the
// end, no acknowledged write is lost; a downgrade is then refused.
func TestRollingUpgrade(t *testing.T) {
	e := newEnv(t, 3)
	e.mustUp()
	agentB := buildAgentB(t)
	c1PID := launchForUpgrade(t, e) // "" when this machine cannot run containers
	w := startWriter(t, e)
	sawBlocked := make(chan bool, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		st, _ := clientstore.Open(e.state)
		cl, _ := st.ClientAny(e.lab.Host("host3").Addr + ":8443")
		defer cl.Close()
		for ctx.Err() == nil {
			ms, err := cl.Members(ctx)
			for _, m := range ms {
				if err == nil && m.Status == api.StatusBlocked {
					sawBlocked <- true
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	r := e.orch("upgrade", "--agent", agentB)
	cancel()
	acked := w.finish()
	if r.code != 0 {
		t.Fatalf("upgrade exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	select {
	case <-sawBlocked:
	default:
		t.Error("no member was ever seen BLOCKED during the roll")
	}
	ms := e.members()
	for _, m := range ms {
		if m.Status != api.StatusOnline || m.Version != "0.9.0" {
			t.Fatalf("after the upgrade: %+v", ms)
		}
	}
	checkWrites(t, e, acked)
	if c1PID != "" {
		if pid := containerPID(t, e, "host2", "c1"); pid != c1PID {
			t.Errorf("c1's init PID went from %s to %q through the upgrade: the container was restarted or stopped", c1PID, pid)
		}
	}

	r = e.orch("upgrade", "--agent", bins.agent)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "refusing to downgrade") {
		t.Fatalf("downgrade not refused (exit %d)\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestUpgradeInterruptedResumes: a member dies mid-roll; the upgrade stops saying where,
// and a re-run after the host is back completes it.
func TestUpgradeInterruptedResumes(t *testing.T) {
	e := newEnv(t, 3)
	e.mustUp()
	if err := e.lab.Host("host3").Kill(); err != nil {
		t.Fatal(err)
	}
	agentB := buildAgentB(t)
	r := e.orch("upgrade", "--agent", agentB)
	if r.code == 0 {
		t.Fatalf("upgrade with host3 down succeeded\n%s", r.stdout)
	}
	t.Logf("interrupted upgrade:\n%s", r.stdout)
	if !strings.Contains(r.stdout, "host3") || !strings.Contains(r.stdout, "re-run") {
		t.Fatalf("the failure does not say which member or how to continue:\n%s%s", r.stdout, r.stderr)
	}
	if err := e.lab.Host("host3").Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	r = e.orch("upgrade", "--agent", agentB) // starts host3's agent again, then goes on
	if r.code != 0 {
		t.Fatalf("resumed upgrade exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, m := range e.members() {
		if m.Version != "0.9.0" || m.Status != api.StatusOnline {
			t.Fatalf("after resuming: %+v", e.members())
		}
	}
}

// TestRecover: two of three hosts are destroyed; `orch recover` makes the survivor the only
// database member, data intact, lost members removed; `--rejoin` then joins a rebuilt host.
func TestRecover(t *testing.T) {
	e := newEnv(t, 3)
	e.mustUp()
	w := startWriter(t, e)
	time.Sleep(300 * time.Millisecond) // let the writer acknowledge a few writes
	acked := w.finish()
	for _, h := range []string{"host2", "host3"} {
		if err := e.lab.Host(h).Kill(); err != nil {
			t.Fatal(err)
		}
	}
	r := e.orch("recover", "--yes")
	if r.code != 0 { // host2 and host3 are unreachable: expected of lost hosts
		t.Fatalf("recover exited %d, want 0 (lost hosts are expected to be unreachable)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "recover on host1") || !strings.Contains(r.stdout, "LAST LOG") {
		t.Fatalf("survivor or the table it was chosen from not shown:\n%s", r.stdout)
	}
	for _, h := range []string{"host2", "host3"} {
		if !strings.Contains(r.stdout, h+": unreachable (lost): removed from the cluster") {
			t.Errorf("the recovery does not say what it did to %s:\n%s", h, r.stdout)
		}
	}
	t.Logf("orch recover:\n%s", r.stdout)
	ms := e.waitMembers("host1 alone", func(ms []api.ClusterMember) bool { return len(ms) == 1 && allOnline(ms) })
	if ms[0].ServerName != "host1" || !ms[0].Database {
		t.Fatalf("after recovery: %+v", ms)
	}
	checkWrites(t, e, acked)

	// host2 comes back rebuilt: its data is gone.
	h2 := e.lab.Host("host2")
	if err := h2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out, err := h2.Exec(t.Context(), "rm", "-rf", "/var/lib/nodeagent/bin", "/var/lib/nodeagent/database", "/var/lib/nodeagent/local.db"); err != nil {
		t.Fatalf("wiping host2: %v %s", err, out)
	}
	delete(e.vars, "host3")
	r = e.orch("recover", "--yes", "--rejoin")
	if r.code != 0 {
		t.Fatalf("recover --rejoin exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.waitMembers("host1 and host2", func(ms []api.ClusterMember) bool { return len(ms) == 2 && allOnline(ms) })
}

// launchForUpgrade runs the entities playbook (pool, bridge, profile, busybox image, c1 on
// host2) and returns c1's init PID, or "" (logged) when this machine cannot run containers.
func launchForUpgrade(t *testing.T, e *env) string {
	t.Helper()
	for _, tool := range []string{"lxc-start", "lxc-info", "dnsmasq", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("no container through the upgrade: %s not found", tool)
			return ""
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Log("no container through the upgrade: no /bin/busybox")
		return ""
	}
	pb := filepath.Join(e.dir, "entities.yml")
	if err := os.WriteFile(pb, []byte(entitiesPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.orch("play", pb, "-e", "image_src="+busyboxImage(t)); r.code != 0 {
		t.Fatalf("launching c1: play exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pid := containerPID(t, e, "host2", "c1")
	if pid == "" || pid == "-1" {
		t.Fatalf("c1 is not running on host2 (lxc-info pid %q)", pid)
	}
	return pid
}

// containerPID is the init PID lxc-info reports for a container on a lab host.
func containerPID(t *testing.T, e *env, host, name string) string {
	t.Helper()
	out, err := e.lab.Host(host).Exec(t.Context(), "lxc-info", "-P", "/var/lib/nodeagent/containers", "-n", name, "-p", "-H")
	if err != nil {
		t.Fatalf("lxc-info on %s: %v", host, err)
	}
	return strings.TrimSpace(string(out))
}
