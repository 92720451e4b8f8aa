package cluster

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
)

// memberExec applies SQL statements through a's internal database endpoint, as a member
// does (presenting the cluster certificate).
func memberExec(t *testing.T, a *agenttest.Agent, sql string, args ...any) {
	t.Helper()
	kp, err := pki.Load(a.Dir, "cluster")
	if err != nil {
		t.Fatalf("%s: %v", a.Name, err)
	}
	cert, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := kp.Fingerprint()
	cl := api.NewTLSClient(a.Addr, api.TLSConfig(cert, fp))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := map[string]any{"request": []map[string]any{{"sql": sql, "args": args}}}
	if _, err := cl.Call(ctx, http.MethodPost, "/internal/db/exec", body, nil, ""); err != nil {
		t.Fatalf("%s: %s: %v", a.Name, sql, err)
	}
}

// TestOrphanRaftServerRemoved: a raft server left without a member row (what a removal
// racing a heartbeat round's rebalance produced) is taken out of the raft configuration by
// the leader's next rebalance; nothing else would ever remove it, and as a voter it counts
// for the quorum.
func TestOrphanRaftServerRemoved(t *testing.T) {
	ms := agenttest.FormCluster(t, 3)
	leader := agenttest.LeaderOf(t, ms)
	victim := otherThan(ms, leader)
	victim.Kill()
	memberExec(t, leader, `DELETE FROM members WHERE name = ?`, victim.Name)
	wait.For(t, 15*time.Second, "the raft server "+victim.Name+" without a member row removed", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := leader.Client().Database(ctx)
		if err != nil {
			return err
		}
		for _, m := range info.Members {
			if m.Name == victim.Name {
				return fmt.Errorf("raft servers %v", info.Members)
			}
		}
		return nil
	})
	waitWrite(t, otherThanAll(ms, victim)[1], "user.after-orphan", "yes", 10*time.Second)
}
