package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
)

// TestRequestsWaitOutAnElection kills the leader of a three-member cluster and at once
// writes and reads through each survivor's API, as LXD's clients would: every request
// waits out the election instead of failing with "no leader" (the survivors still name the
// dead member as leader for a moment), and the writes are all there afterwards. A write
// that went out on a pooled connection to the dead leader may come back "may or may not
// have been applied" (the forwarder cannot tell): that answer is allowed, no other error.
func TestRequestsWaitOutAnElection(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	waitAllOnline(t, ms[0], 3, 10*time.Second)
	leader := agenttest.LeaderOf(t, ms)
	var survivors []*agenttest.Agent
	for _, m := range ms {
		if m != leader {
			survivors = append(survivors, m)
		}
	}
	leader.Kill()
	want := map[string]string{}
	var mu sync.Mutex
	errs := make(chan error, 2*len(survivors))
	for _, m := range survivors {
		key := "user.during-election-" + m.Name
		mu.Lock()
		want[key] = "yes"
		mu.Unlock()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := m.Client().PatchConfig(ctx, map[string]string{key: "yes"}, ""); err != nil {
				if strings.Contains(err.Error(), "may or may not have been applied") {
					t.Logf("write through %s during the election: %v", m.Name, err)
					mu.Lock()
					delete(want, key)
					mu.Unlock()
					errs <- nil
					return
				}
				errs <- fmt.Errorf("write through %s during the election: %w", m.Name, err)
				return
			}
			errs <- nil
		}()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, _, err := m.Client().Server(ctx); err != nil {
				errs <- fmt.Errorf("read through %s during the election: %w", m.Name, err)
				return
			}
			errs <- nil
		}()
	}
	for range 2 * len(survivors) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	settledReplicas(t, survivors, want)
}
