package cluster

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestConcurrentJoinsAddOneCaughtUpVoterAtATime: two members join a two-member cluster at
// once while it takes writes. When the third member arrives the leader wants three voters:
// it made the spare and the joiner voters back to back before either held the log, could
// not reach a quorum within its lease and stepped down mid-join ("leadership lost while
// committing log"). Now every member enters the raft configuration as a non-voter and is
// promoted once caught up: the leader's log shows each peer's replication starting as a
// non-voter, both joins succeed and the roles settle at three voters and a stand-by.
func TestConcurrentJoinsAddOneCaughtUpVoterAtATime(t *testing.T) {
	ms := agenttest.StartN(t, 4)
	agenttest.Bootstrap(t, ms[0], api.Preseed{})
	agenttest.JoinWithToken(t, ms[0], ms[1])

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := map[string]int{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := ms[0].Client().PatchConfig(cctx, map[string]string{fmt.Sprintf("user.w%d", i): "x"}, "")
			cancel()
			if err != nil && ctx.Err() == nil {
				mu.Lock()
				failed[err.Error()]++
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { stop(); wg.Wait() })

	tokens := []string{agenttest.NewToken(t, ms[0], ms[2].Name), agenttest.NewToken(t, ms[0], ms[3].Name)}
	errs := make([]error, 2)
	var joins sync.WaitGroup
	for i, a := range ms[2:] {
		joins.Add(1)
		go func() {
			defer joins.Done()
			r := a.RunInput(agenttest.PreseedYAML(t, agenttest.TokenPreseed(a, tokens[i])), "init", "--preseed")
			if r.Code != 0 {
				errs[i] = fmt.Errorf("%s: init --preseed: exit %d: %s%s", a.Name, r.Code, r.Stdout, r.Stderr)
			}
		}()
	}
	joins.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	agenttest.WaitRoles(t, ms[0], 30*time.Second, "three voters and a stand-by", agenttest.WantRoleCounts(3, 1, 0))
	stop()
	wg.Wait()

	var b []byte
	seen := map[string]string{} // peer -> suffrage its replication started with
	wait.For(t, 10*time.Second, "the leader replicating to the three others", func() error {
		var err error
		if b, err = os.ReadFile(ms[0].LogPath); err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`pipelining replication.*Suffrage:(\w+) ID:(\w+)`).FindAllStringSubmatch(string(b), -1) {
			if _, ok := seen[m[2]]; !ok {
				seen[m[2]] = m[1]
			}
		}
		if len(seen) < 3 {
			return fmt.Errorf("replication started to %v", seen)
		}
		return nil
	})
	for peer, suffrage := range seen {
		if suffrage != "Nonvoter" {
			t.Errorf("the leader started replicating to %s as a %s: it must enter as a non-voter and be promoted once caught up", peer, suffrage)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("writes failed during the joins: %v", failed)
	for _, l := range regexp.MustCompile(`(?m)^.*(role changed|catch up|rebalanc).*$`).FindAllString(string(b), -1) {
		t.Log(l)
	}
}
