package cluster

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

var stability = flag.Duration("stability", 0, "run TestLeaderStability with idle and loaded phases of this length each (e.g. 10m)")

// TestLeaderStability checks the default raft timings on this machine: a 3-member cluster
// sees no leader change during an idle phase and a loaded phase (16 writers). It runs only
// with -stability D, because it takes 2×D:
//
//	go test ./integration/cluster -run LeaderStability -stability 10m -timeout 30m -v
func TestLeaderStability(t *testing.T) {
	if *stability == 0 {
		t.Skip("long test: run with -stability 10m")
	}
	ms := make([]*agenttest.Agent, 3)
	for i := range ms {
		ms[i] = agenttest.New(t, fmt.Sprintf("node%d", i+1), agenttest.NewAddr(t))
		ms[i].DefaultRaft = true
		ms[i].Start()
	}
	agenttest.Form(t, ms)
	wait.For(t, 30*time.Second, "three ONLINE voters", func() error { return threeOnlineVoters(ms[0]) })
	leader, term := leaderAndTerm(t, ms)
	t.Logf("leader %s, term %d", leader, term)
	watch := func(phase string, d time.Duration) {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if l, tm := leaderAndTerm(t, ms); l != leader || tm != term {
				t.Fatalf("%s phase: leader changed from %s (term %d) to %s (term %d)", phase, leader, term, l, tm)
			}
			time.Sleep(time.Second)
		}
	}
	watch("idle", *stability)
	var stop atomic.Bool
	var writes atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cl := ms[i%3].Client()
			for n := 0; !stop.Load(); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if cl.PatchConfig(ctx, map[string]string{fmt.Sprintf("user.s%d", i): fmt.Sprint(n)}, "") == nil {
					writes.Add(1)
				}
				cancel()
			}
		}(i)
	}
	watch("loaded", *stability)
	stop.Store(true)
	wg.Wait()
	t.Logf("no leader change in %v idle + %v loaded (%d writes, %.0f/s)", *stability, *stability, writes.Load(), float64(writes.Load())/stability.Seconds())
}

// leaderAndTerm reads the leader's name from the member list and the highest raft term
// any member reports.
func leaderAndTerm(t *testing.T, ms []*agenttest.Agent) (string, uint64) {
	t.Helper()
	var leader string
	for _, m := range mustMembers(t, ms[0]) {
		for _, r := range m.Roles {
			if r == api.RoleDatabaseLeader {
				leader = m.ServerName
			}
		}
	}
	var term uint64
	for _, a := range ms {
		var info api.DatabaseInfo
		if err := json.Unmarshal([]byte(a.MustRun("cluster", "list-database", "--format", "json")), &info); err != nil {
			t.Fatal(err)
		}
		term = max(term, info.LastTerm)
	}
	return leader, term
}
