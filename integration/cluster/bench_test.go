package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"orch/integration/agenttest"
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
		ms := agenttest.StartN(b, 3)
		b.StartTimer()
		start := time.Now()
		agenttest.Bootstrap(b, ms[0], api.Preseed{})
		boot += time.Since(start)
		for _, m := range ms[1:] {
			agenttest.JoinWithToken(b, ms[0], m)
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
func threeOnlineVoters(a *agenttest.Agent) error {
	list, err := agenttest.ListMembers(a)
	if err != nil {
		return err
	}
	for _, m := range list {
		if m.Status != api.StatusOnline {
			return fmt.Errorf("%s is %s", m.ServerName, m.Status)
		}
	}
	return agenttest.WantRoleCounts(3, 0, 0)(agenttest.RoleMap(list))
}

// BenchmarkClusterList is the latency of GET /1.0/cluster/members (what `cluster list`
// asks) through the API client on the local socket, of the leader and of a follower (which
// forwards it to the leader).
func BenchmarkClusterList(b *testing.B) {
	ms := agenttest.FormCluster(b, 3)
	wait.For(b, 30*time.Second, "three ONLINE voters", func() error { return threeOnlineVoters(ms[0]) })
	leader := agenttest.LeaderOf(b, ms)
	for _, c := range []struct {
		name string
		a    *agenttest.Agent
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
