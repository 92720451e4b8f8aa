package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// BenchmarkForm3 times forming a three-member cluster from preseeds with the agent's CLI:
// bootstrap node1, then `cluster add` + `init --preseed` for node2 and node3, until all
// three are ONLINE voters. Starting the daemons is not timed. Target: < 1 s per cluster.
// It also reports the bootstrap alone (bootstrap-ns/op), which includes the first election.
func BenchmarkForm3(b *testing.B) {
	var boot time.Duration
	for range b.N {
		b.StopTimer()
		ms := startAgents(b, 3)
		b.StartTimer()
		start := time.Now()
		bootstrap(b, ms[0], api.Preseed{})
		boot += time.Since(start)
		for _, m := range ms[1:] {
			joinWithToken(b, ms[0], m)
		}
		wait.For(b, 30*time.Second, "three ONLINE voters", func() error { return threeOnlineVoters(ms[0]) })
		b.StopTimer()
		for _, m := range ms {
			m.Kill()
		}
	}
	b.ReportMetric(float64(boot.Nanoseconds())/float64(b.N), "bootstrap-ns/op")
}

// threeOnlineVoters checks the member list through a shows three ONLINE voters.
func threeOnlineVoters(a *agent) error {
	list, err := listMembers(a)
	if err != nil {
		return err
	}
	for _, m := range list {
		if m.Status != api.StatusOnline {
			return fmt.Errorf("%s is %s", m.ServerName, m.Status)
		}
	}
	return wantRoleCounts(3, 0, 0)(roleMap(list))
}

// BenchmarkClusterList is the latency of GET /1.0/cluster/members (what `cluster list`
// asks) through the API client on the local socket, of the leader and of a follower (which
// forwards it to the leader).
func BenchmarkClusterList(b *testing.B) {
	ms := formCluster(b, 3)
	wait.For(b, 30*time.Second, "three ONLINE voters", func() error { return threeOnlineVoters(ms[0]) })
	leader := leaderOf(b, ms)
	for _, c := range []struct {
		name string
		a    *agent
	}{{"leader", leader}, {"follower", otherThan(ms, leader)}} {
		b.Run(c.name, func(b *testing.B) {
			cl := c.a.Client()
			ctx := context.Background()
			for b.Loop() {
				ms, err := cl.Members(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(ms) != 3 {
					b.Fatalf("%d members", len(ms))
				}
			}
		})
	}
}
