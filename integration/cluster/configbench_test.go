package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
)

// BenchmarkConfigPatch is the rate of PATCH /1.0 (one user.* key each, no If-Match) through
// the leader's local socket of a three-member cluster, with 1 and 16 concurrent clients
// writing different keys. Concurrent PATCHes should share raft entries, so 16 clients
// should go well beyond one.
func BenchmarkConfigPatch(b *testing.B) {
	ms := agenttest.FormCluster(b, 3)
	wait.For(b, 30*time.Second, "three ONLINE voters", func() error { return threeOnlineVoters(ms[0]) })
	leader := agenttest.LeaderOf(b, ms)
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			ctx := context.Background()
			cl := leader.Client()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := c; i < b.N; i += clients {
						key := fmt.Sprintf("user.bench%d", c)
						if err := cl.PatchConfig(ctx, map[string]string{key: fmt.Sprint(i)}, ""); err != nil {
							errs <- fmt.Errorf("client %d, PATCH %d: %w", c, i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
