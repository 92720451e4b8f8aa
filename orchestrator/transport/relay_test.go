package transport

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orch/internal/shell"
	"orch/internal/wait"
	"orch/orchestrator/transport/sshdtest"
)

// agentBinary is the real agent (make build), whose serve-file command lends files.
func agentBinary(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs("../../bin/nodeagent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("bin/nodeagent not built: run make build")
	}
	return bin
}

// lendAgent lends a pushed agent binary with its own serve-file command.
func lendAgent(remote string) (string, bool) {
	return shell.Quote(remote) + " serve-file --file " + shell.Quote(remote), true
}

// relayPushAll pushes local to every host at once through relay, each host to its own
// directory under base (they share this machine's filesystem).
func relayPushAll(t *testing.T, conns []*Conn, base, local string) []string {
	t.Helper()
	remotes := make([]string, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		remotes[i] = filepath.Join(base, c.Name(), "bin", "nodeagent")
		wg.Go(func() { _, errs[i] = c.Push(testCtx(t), local, remotes[i], 0o755) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", conns[i].Name(), err)
		}
	}
	return remotes
}

func relayHosts(t *testing.T, n int, r *Relay) []*Conn {
	t.Helper()
	sshdtest.RequireRoot(t, "hosts write under a shared directory as root")
	files := NewFileCache()
	var conns []*Conn
	for range n {
		h := startHost(t, sshdtest.Options{})
		h.cfg.Relay, h.cfg.Files = r, files
		conns = append(conns, dial(t, h.cfg))
	}
	return conns
}

func sameFile(t *testing.T, want []byte, remotes []string) {
	t.Helper()
	for _, f := range remotes {
		got, err := os.ReadFile(f)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want the agent's %d", f, len(got), err, len(want))
		}
		if st, err := os.Stat(f); err == nil && st.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v", f, st.Mode())
		}
	}
}

func TestRelayFansOutFromOneDirectPush(t *testing.T) {
	agent := agentBinary(t)
	want, _ := os.ReadFile(agent)
	r := NewRelay(RelayOptions{Lend: lendAgent, Direct: 1, Fanout: 2})
	conns := relayHosts(t, 6, r)
	dir := t.TempDir()
	remotes := relayPushAll(t, conns, dir, agent)
	sameFile(t, want, remotes)
	st := r.Stats()
	if st.Direct != 1 || st.Fetched != 5 || st.Fallbacks != 0 || st.Lenders < 2 {
		t.Errorf("stats %+v, want 1 direct, 5 fetched from lenders, at least 2 lenders (a tree)", st)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The lenders end with the relay: nothing serve-file of this test's files is left on
	// the hosts (the test hosts share this machine with other tests' lenders). A killed
	// session's process may take a moment to go.
	lenders := fmt.Sprintf("pgrep -f '[s]erve-file --file %s' || true", dir)
	err := wait.UntilEvery(5*time.Second, 50*time.Millisecond, func() error {
		if out := run(t, conns[0], lenders, RunOptions{}); len(bytes.TrimSpace(out.Stdout)) != 0 {
			return fmt.Errorf("lenders still running after Close: %s", out.Stdout)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// A second run changes nothing and sends nothing.
	r2 := NewRelay(RelayOptions{Lend: lendAgent})
	defer r2.Close()
	for i, c := range conns {
		c.cfg.Relay = r2
		if changed, err := c.Push(testCtx(t), agent, remotes[i], 0o755); err != nil || changed {
			t.Errorf("%s: re-push changed=%v err=%v", c.Name(), changed, err)
		}
	}
	if st := r2.Stats(); st != (RelayStats{}) {
		t.Errorf("re-push stats %+v, want nothing sent", st)
	}
}

// A host lends only while pushes wait for a lender: the two hosts fetching from the first
// one at once (Fanout 4) leave nobody waiting, and start no lender of their own.
func TestRelayLendsOnlyWhilePushesWait(t *testing.T) {
	agent := agentBinary(t)
	want, _ := os.ReadFile(agent)
	r := NewRelay(RelayOptions{Lend: lendAgent, Direct: 1, Fanout: 4})
	defer r.Close()
	conns := relayHosts(t, 3, r)
	sameFile(t, want, relayPushAll(t, conns, t.TempDir(), agent))
	if st := r.Stats(); st.Direct != 1 || st.Fetched != 2 || st.Lenders != 1 {
		t.Errorf("stats %+v, want 1 direct, 2 fetched, 1 lender", st)
	}
}

// Only MaxLenders hosts lend; the others fetch from them and start no lender of their own.
func TestRelayLendersCapped(t *testing.T) {
	agent := agentBinary(t)
	want, _ := os.ReadFile(agent)
	r := NewRelay(RelayOptions{Lend: lendAgent, Direct: 1, Fanout: 1, MaxLenders: 2})
	defer r.Close()
	conns := relayHosts(t, 6, r)
	sameFile(t, want, relayPushAll(t, conns, t.TempDir(), agent))
	if st := r.Stats(); st.Direct != 1 || st.Fetched != 5 || st.Lenders != 2 {
		t.Errorf("stats %+v, want 1 direct, 5 fetched, 2 lenders", st)
	}
}

// A lender whose copy goes bad is caught by the digest check: the fetching host gets the
// file from the control node instead, and no host keeps a wrong copy.
func TestRelayBadLenderFallsBack(t *testing.T) {
	agent := agentBinary(t)
	want, _ := os.ReadFile(agent)
	base := t.TempDir()
	// The lender serves a copy, which the test corrupts once it lends.
	lent := filepath.Join(base, "lent-copy")
	r := NewRelay(RelayOptions{Direct: 1, Fanout: 8, Lend: func(remote string) (string, bool) {
		return fmt.Sprintf("cp %s %s && printf garbage >> %s && %s serve-file --file %s",
			shell.Quote(remote), shell.Quote(lent), shell.Quote(lent), shell.Quote(remote), shell.Quote(lent)), true
	}})
	defer r.Close()
	conns := relayHosts(t, 4, r)
	remotes := relayPushAll(t, conns, base, agent)
	sameFile(t, want, remotes)
	if st := r.Stats(); st.Fallbacks == 0 || st.Fetched != 0 {
		t.Errorf("stats %+v: every fetch should have failed its digest check and fallen back", st)
	}
}

// Hosts that cannot lend (no such command) are pushed directly, all of them, and at once
// after the first failure rather than one by one.
func TestRelayWithoutLendersPushesDirectly(t *testing.T) {
	agent := agentBinary(t)
	want, _ := os.ReadFile(agent)
	r := NewRelay(RelayOptions{Lend: func(string) (string, bool) { return "exit 3", true }})
	defer r.Close()
	conns := relayHosts(t, 4, r)
	sameFile(t, want, relayPushAll(t, conns, t.TempDir(), agent))
	if st := r.Stats(); st.Direct != 4 || st.Lenders != 0 {
		t.Errorf("stats %+v, want 4 direct pushes and no lender", st)
	}
}

// The token never reaches a command line: a process listing on the host shows no token.
func TestRelayTokenNotOnCommandLines(t *testing.T) {
	agent := agentBinary(t)
	r := NewRelay(RelayOptions{Lend: lendAgent})
	conns := relayHosts(t, 1, r)
	relayPushAll(t, conns, t.TempDir(), agent)
	r.mu.Lock()
	var token string
	for _, p := range r.pools {
		for _, l := range p.lenders {
			token = l.token
		}
	}
	r.mu.Unlock()
	if token == "" {
		t.Fatal("no lender")
	}
	out := run(t, conns[0], "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '", RunOptions{})
	if bytes.Contains(out.Stdout, []byte(token)) {
		t.Error("the lender's token is on a command line")
	}
	r.Close()
}
