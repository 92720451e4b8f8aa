package orchup

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"orch/nodeagent/api"
)

// summaryLine is the last line orch printed: its one-line summary.
func summaryLine(r result) string {
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return lines[len(lines)-1]
}

// wantInOrder fails unless every word appears in s, each after the previous one.
func wantInOrder(t *testing.T, what, s string, words ...string) {
	t.Helper()
	rest := s
	for _, w := range words {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%s does not say %q (in this order: %q): %s", what, w, words, s)
			return
		}
		rest = rest[i+len(w):]
	}
}

// agentUnchanged fails unless every host still has bins.agent installed.
func agentUnchanged(t *testing.T, e *env) {
	t.Helper()
	want, err := os.ReadFile(bins.agent)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range e.lab.Hosts() {
		p, ok := h.Path("/var/lib/nodeagent/bin/nodeagent")
		if !ok {
			t.Fatalf("%s: the agent directory is not private", h.Name)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: the installed agent changed (%v)", h.Name, err)
		}
	}
}

// TestUpgradeCheckAndRefusedDowngrades: `orch upgrade --check` reports which members it
// would upgrade, in which order, from which version to which, exits 0 at once and changes
// nothing; after the real upgrade, `orch up` and `orch upgrade` with the older agent are
// refused with a summary naming the hosts, their version, the offered one and what to run,
// and nothing misleading (no "converged" hosts, no advice about skipped members).
func TestUpgradeCheckAndRefusedDowngrades(t *testing.T) {
	e := newEnv(t, 3)
	e.mustUp()
	agentB := buildAgentB(t)
	oldVersion := e.members()[0].Version

	start := time.Now()
	r := e.orch("upgrade", "--check", "--agent", agentB)
	took := time.Since(start)
	t.Logf("upgrade --check (%v):\n%s", took.Round(time.Millisecond), r.stdout)
	if r.code != 0 {
		t.Fatalf("upgrade --check exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if took > 20*time.Second {
		t.Errorf("upgrade --check took %v: a dry run must not wait for restarts that it did not make", took)
	}
	sum := summaryLine(r)
	wantInOrder(t, "the dry run's summary", sum, "1. host1", oldVersion, "0.9.0", "2. host2", oldVersion, "0.9.0", "3. host3", oldVersion, "0.9.0")
	for _, m := range e.members() {
		if m.Version != oldVersion || m.Status != api.StatusOnline {
			t.Errorf("after upgrade --check: member %s is %s on %s; want ONLINE on %s", m.ServerName, m.Status, m.Version, oldVersion)
		}
	}
	agentUnchanged(t, e)

	if r := e.orch("upgrade", "--agent", agentB); r.code != 0 {
		t.Fatalf("upgrade exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	refused := func(r result, cmd string) {
		t.Helper()
		t.Logf("%s with the older agent:\n%s", cmd, r.stdout)
		if r.code == 0 {
			t.Fatalf("%s with the older agent succeeded", cmd)
		}
		sum := summaryLine(r)
		for _, w := range []string{"Refused to downgrade", "host1", "host2", "host3", "0.9.0", oldVersion, bins.agent, "--force", "--agent"} {
			if !strings.Contains(sum, w) {
				t.Errorf("%s: the summary does not say %q: %s", cmd, w, sum)
			}
		}
		for _, w := range []string{"converged", "skipped", "Converged"} {
			if strings.Contains(sum, w) {
				t.Errorf("%s: the summary says %q although every host refused: %s", cmd, w, sum)
			}
		}
	}
	refused(e.up(), "orch up")
	refused(e.orch("upgrade", "--agent", bins.agent), "orch upgrade")
	for _, m := range e.members() {
		if m.Version != "0.9.0" || m.Status != api.StatusOnline {
			t.Errorf("after the refusals: member %s is %s on %s; want ONLINE on 0.9.0", m.ServerName, m.Status, m.Version)
		}
	}
}
