package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
	"orch/orchestrator/clientstore"
)

// upgrade is `orch upgrade` of a 3-member cluster to a newer agent (a build with a higher
// version and API level) while a prober asks every member for the member list every 10 ms:
// the figure is the longest stretch during which no member served it. Members already
// upgraded are BLOCKED (they refuse the client API) until the last one is, so the window
// is the last member's restart plus the schema update.
func (s *suite) upgrade(b *testing.B) {
	newer := buildNewerAgent(b)
	var gaps, walls []time.Duration
	for i := range s.k.runs {
		gap, wall, err := upgradeOnce(b, newer)
		if err != nil {
			b.Errorf("upgrade, run %d: %v", i+1, err)
			break
		}
		gaps, walls = append(gaps, gap), append(walls, wall)
	}
	s.rep.Add(&Row{Section: "Upgrade", Measure: "rolling `orch upgrade` of 3 members: longest time no member serves the client API (member list probed every 10 ms)",
		Orch: Summarise("s", Seconds(gaps))}).Below(2)
	s.rep.Add(&Row{Section: "Upgrade", Measure: "rolling `orch upgrade` of 3 members, wall time (push, restart, wait, confirm; serial 1)",
		Orch: Summarise("s", Seconds(walls))})
}

// buildNewerAgent builds the agent with a higher version and API level, as a release would.
func buildNewerAgent(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "nodeagent-newer")
	err := agenttest.Build(out, agenttest.AgentPkg, agenttest.BuildOptions{
		Flags: []string{"-ldflags", "-X orch/nodeagent/version.Version=0.9.0 -X orch/nodeagent/version.APILevel=2 -linkmode external -extldflags -static -s -w"},
		Env:   []string{"CGO_ENABLED=1"},
	})
	if err != nil {
		b.Fatalf("building the newer agent: %v", err)
	}
	return out
}

// upgradeOnce forms a fresh 3-member cluster, then upgrades it under the prober.
func upgradeOnce(b *testing.B, newer string) (gap, wall time.Duration, err error) {
	l := newLab(b, 3)
	defer closeLab(b, l)
	e := newOrchEnv(b, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if r := e.up(ctx); r.err != nil {
		return 0, 0, r.err
	}
	st, err := clientstore.Open(e.state)
	if err != nil {
		return 0, 0, err
	}
	var clients []*api.Client
	for _, h := range l.Hosts() {
		cl, err := st.ClientAny(h.Addr + ":8443")
		if err != nil {
			return 0, 0, err
		}
		defer cl.Close()
		clients = append(clients, cl)
	}
	p := newProber(clients)
	r := e.orch(ctx, "upgrade", "--agent", newer)
	gap, served := p.stop()
	if r.err != nil {
		return 0, 0, r.err
	}
	if !served {
		return 0, 0, fmt.Errorf("no member served the member list after the upgrade")
	}
	return gap, r.took, nil
}

// prober asks every member for the member list in a loop and tracks the longest time
// between two successful answers from any member.
type prober struct {
	mu      sync.Mutex
	last    time.Time
	longest time.Duration
	quit    chan struct{}
	wg      sync.WaitGroup
}

func newProber(clients []*api.Client) *prober {
	p := &prober{last: time.Now(), quit: make(chan struct{})}
	for _, cl := range clients {
		p.wg.Go(func() {
			for {
				select {
				case <-p.quit:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := cl.Members(ctx)
				cancel()
				if err == nil {
					p.ok(time.Now())
				}
				select {
				case <-p.quit:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
	}
	return p
}

func (p *prober) ok(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := at.Sub(p.last); d > p.longest {
		p.longest = d
	}
	if at.After(p.last) {
		p.last = at
	}
}

// stop waits until a member serves again (up to 30 s), stops probing and returns the
// longest gap, and whether service came back.
func (p *prober) stop() (time.Duration, bool) {
	ended := time.Now()
	deadline := ended.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		back := p.last.After(ended)
		p.mu.Unlock()
		if back {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(p.quit)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.longest, p.last.After(ended)
}
