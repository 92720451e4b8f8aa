package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// upgradedBin is the nodeagent binary built with the schemav2 tag (one more schema update), built once per
// test binary on first use.
var upgradedBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(agenttest.BinDir(), "nodeagent-schemav2")
	return out, agenttest.BuildAgent(out, "schemav2")
})

// upgraded returns the schemav2 binary, failing the test if it does not build.
func upgraded(tb testing.TB) string {
	tb.Helper()
	bin, err := upgradedBin()
	if err != nil {
		tb.Fatalf("building nodeagent with -tags schemav2: %v", err)
	}
	return bin
}

// statuses maps member names to their status in a member list.
func statuses(ms []api.ClusterMember) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.ServerName] = m.Status
	}
	return out
}

// memberOf finds one member in a member list.
func memberOf(ms []api.ClusterMember, name string) (api.ClusterMember, bool) {
	for _, m := range ms {
		if m.ServerName == name {
			return m, true
		}
	}
	return api.ClusterMember{}, false
}

// waitStatus waits until the member list through via shows member name with status, and
// returns that list.
func waitStatus(tb testing.TB, via *agenttest.Agent, name, status string, timeout time.Duration) []api.ClusterMember {
	tb.Helper()
	var list []api.ClusterMember
	wait.For(tb, timeout, fmt.Sprintf("%s %s in the list through %s", name, status, via.Name), func() error {
		var err error
		if list, err = agenttest.ListMembers(via); err != nil {
			return err
		}
		m, ok := memberOf(list, name)
		if !ok {
			return fmt.Errorf("%s not listed: %v", name, statuses(list))
		}
		if m.Status != status {
			return fmt.Errorf("%s is %s (%s)", name, m.Status, m.Message)
		}
		return nil
	})
	return list
}

// waitAllOnline waits until every member listed through via is ONLINE.
func waitAllOnline(tb testing.TB, via *agenttest.Agent, n int, timeout time.Duration) {
	tb.Helper()
	wait.For(tb, timeout, fmt.Sprintf("%d ONLINE members through %s", n, via.Name), func() error {
		list, err := agenttest.ListMembers(via)
		if err != nil {
			return err
		}
		if len(list) != n {
			return fmt.Errorf("%d members listed: %v", len(list), statuses(list))
		}
		for _, m := range list {
			if m.Status != api.StatusOnline {
				return fmt.Errorf("%s is %s (%s)", m.ServerName, m.Status, m.Message)
			}
		}
		return nil
	})
}

// setThreshold sets cluster.offline_threshold (seconds) through a.
func setThreshold(tb testing.TB, a *agenttest.Agent, seconds int) {
	tb.Helper()
	a.MustRun("config", "set", "cluster.offline_threshold", fmt.Sprint(seconds))
}

// patch sets one configuration key through a's socket API (no CLI process: what the
// benchmarks time).
func patch(a *agenttest.Agent, key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.Client().PatchConfig(ctx, map[string]string{key: value}, "")
}

// waitWrite waits until a write through a succeeds.
func waitWrite(tb testing.TB, a *agenttest.Agent, key, value string, timeout time.Duration) {
	tb.Helper()
	wait.For(tb, timeout, "a write through "+a.Name, func() error { return patch(a, key, value) })
}

// otherThanAll returns the members of ms that are not in except.
func otherThanAll(ms []*agenttest.Agent, except ...*agenttest.Agent) []*agenttest.Agent {
	var out []*agenttest.Agent
	for _, m := range ms {
		skip := false
		for _, e := range except {
			skip = skip || m == e
		}
		if !skip {
			out = append(out, m)
		}
	}
	return out
}

// offlineWatch polls the member list through the running members every 50ms and records
// every time a member that should be alive shows OFFLINE: a member is expected alive until
// Expect(name, false) (called just before killing it) and again once the list shows it
// ONLINE after Expect(name, true).
type offlineWatch struct {
	tb   testing.TB
	ms   []*agenttest.Agent
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	alive      map[string]bool // expected alive and already seen ONLINE
	returning  map[string]bool // restarted, not yet seen ONLINE
	violations []string
	polls      int
}

// watchOffline starts an offlineWatch over ms (all expected alive); Stop reports.
func watchOffline(tb testing.TB, ms []*agenttest.Agent) *offlineWatch {
	w := &offlineWatch{tb: tb, ms: ms, stop: make(chan struct{}), done: make(chan struct{}),
		alive: map[string]bool{}, returning: map[string]bool{}}
	for _, m := range ms {
		w.alive[m.Name] = true
	}
	go w.run()
	tb.Cleanup(func() { w.halt() })
	return w
}

// Expect declares a member alive (after a restart) or not (before a kill).
func (w *offlineWatch) Expect(name string, alive bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.alive[name] = false
	w.returning[name] = alive
}

func (w *offlineWatch) run() {
	defer close(w.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.poll()
		}
	}
}

func (w *offlineWatch) poll() {
	for _, via := range w.ms {
		if !via.Running() {
			continue
		}
		list, err := agenttest.ListMembers(via)
		if err != nil {
			continue
		}
		w.mu.Lock()
		w.polls++
		for _, m := range list {
			switch {
			case w.returning[m.ServerName] && m.Status == api.StatusOnline:
				w.alive[m.ServerName], w.returning[m.ServerName] = true, false
			case w.alive[m.ServerName] && m.Status == api.StatusOffline:
				w.violations = append(w.violations, fmt.Sprintf("%s OFFLINE while alive at %s (%s; through %s)",
					m.ServerName, time.Now().Format("15:04:05.000"), m.Message, via.Name))
			}
		}
		w.mu.Unlock()
		return
	}
}

func (w *offlineWatch) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Stop ends the watch and fails the test if a live member was ever OFFLINE.
func (w *offlineWatch) Stop() {
	w.tb.Helper()
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.violations) > 0 {
		w.tb.Errorf("a live member was OFFLINE (%d of %d polls):\n%s", len(w.violations), w.polls, strings.Join(w.violations, "\n"))
		return
	}
	w.tb.Logf("offline watch: %d polls, no live member OFFLINE", w.polls)
}
