package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"orch/nodeagent/api"
)

// apiProfiles, when ORCH_BENCH_PROFILE names a directory, takes CPU profiles of the api
// section's three daemons under each row's load, after the row's measured runs (so that
// profiling never slows the figures): every member serves pprof (core.debug_address on its
// cluster address, port profilePort, inside the bench netns) and a profile of each is
// fetched with curl inside the namespace while the row's load runs over and over.
type apiProfiles struct {
	dir     string
	o       orchDaemons
	leader  int
	enabled bool
}

// apiProfileSeconds is how long each row's CPU profiles run, apiTraceSeconds its
// execution traces (go tool trace: where an entry's cycle waits), taken after them.
const (
	apiProfileSeconds = 4
	apiTraceSeconds   = 1
)

// newAPIProfiles turns pprof on in every member when ORCH_BENCH_PROFILE is set.
func newAPIProfiles(ctx context.Context, o orchDaemons, leader int) (*apiProfiles, error) {
	p := &apiProfiles{dir: os.Getenv("ORCH_BENCH_PROFILE"), o: o, leader: leader}
	if p.dir == "" {
		return p, nil
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return nil, err
	}
	for i := range 3 {
		c := api.NewUnixClient(filepath.Join(o.dir(i), "unix.socket"))
		err := c.PatchConfig(ctx, map[string]string{"core.debug_address": p.debugAddr(i)}, "")
		c.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: core.debug_address: %w", name(i), err)
		}
	}
	p.enabled = true
	return p, nil
}

func (p *apiProfiles) debugAddr(i int) string {
	return fmt.Sprintf("127.0.2.%d:%s", i+1, profilePort)
}

// role names member i in a profile's file name.
func (p *apiProfiles) role(i int) string {
	if i == p.leader {
		return "leader"
	}
	return "follower" + name(i)
}

// take profiles the three daemons while clients goroutines run op back to back: CPU
// profiles (DIR/api-<label>-<role>.pprof), then execution traces (.trace).
func (p *apiProfiles) take(label string, clients int, op func(client int) error) error {
	if !p.enabled {
		return nil
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var opErr atomic.Value
	for c := range clients {
		wg.Go(func() {
			for !stop.Load() {
				if err := op(c); err != nil {
					opErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	first := p.fetchAll(label, "pprof", fmt.Sprintf("profile?seconds=%d", apiProfileSeconds))
	if err := p.fetchAll(label, "trace", fmt.Sprintf("trace?seconds=%d", apiTraceSeconds)); first == nil {
		first = err
	}
	stop.Store(true)
	wg.Wait()
	if err, _ := opErr.Load().(error); err != nil && first == nil {
		first = err
	}
	return first
}

// fetchAll fetches /debug/pprof/<query> of the three daemons at once into
// DIR/api-<label>-<role>.<ext>.
func (p *apiProfiles) fetchAll(label, ext, query string) error {
	errs := make(chan error, 3)
	for i := range 3 {
		go func() {
			file := filepath.Join(p.dir, fmt.Sprintf("api-%s-%s.%s", label, p.role(i), ext))
			url := fmt.Sprintf("http://%s/debug/pprof/%s", p.debugAddr(i), query)
			_, err := runIn(p.o.ns.command("curl", "-sSf", "-o", file, url), "")
			errs <- err
		}()
	}
	var first error
	for range 3 {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
