package cluster

import (
	"os"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
)

// TestBrokenDatabaseReopensItself: a follower's agent filesystem fills up under write
// load, its database breaks (SQLite or the raft log cannot write); once space is freed it
// reopens its database by itself, without a restart, says so in its log, and catches up:
// every replica ends up holding every acknowledged write and the last one. It stayed broken
// (and OFFLINE) until someone restarted the daemon.
func TestBrokenDatabaseReopensItself(t *testing.T) {
	n3 := agenttest.New(t, "node3", agenttest.NewAddr(t))
	agenttest.MountSmallDisk(t, n3, smallDiskMiB)
	ms := []*agenttest.Agent{agenttest.Start(t, "node1", agenttest.NewAddr(t)), agenttest.Start(t, "node2", agenttest.NewAddr(t)), n3}
	n3.Start()
	agenttest.Form(t, ms)
	pid := n3.PID()

	w, stop := writeUntilCancelled(t, ms[:2])
	filler := fillDisk(t, n3.Dir)
	wait.For(t, 30*time.Second, "node3's database breaking on its full disk", func() error {
		return logSays(n3, "store is broken")()
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	stop()
	w.checkReplicated(t, ms, ms[0], "after-repair")
	if err := logSays(n3, "database reopened")(); err != nil {
		t.Error(err)
	}
	if got := n3.PID(); got != pid {
		t.Errorf("node3's daemon was restarted (pid %d, was %d): it must mend itself in-process", got, pid)
	}
	t.Logf("%d writes acknowledged, %d refused, %d with outcome unknown", len(w.acked), len(w.refused), w.ambiguous)
}
