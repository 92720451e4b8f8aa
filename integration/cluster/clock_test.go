package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// clockThreshold is cluster.offline_threshold (seconds) in the clock tests: far below the
// 60 s skew, so judging a heartbeat by a skewed clock makes a member OFFLINE (or ONLINE
// forever) at once.
const clockThreshold = 3

// createVolume creates custom volume name in pool d2 on member target, through via's
// socket (via checks that target is ONLINE first).
func createVolume(via *agenttest.Agent, target, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := via.Client().CreateStorageVolume(ctx, "d2", api.StorageVolumesPost{Name: name}, target)
	return err
}

// TestClockOffset runs a 3-member cluster where one member's clock is 60 s off (the hidden
// --debug-clock-offset flag). Health is decided by the leader's clock: every member lists
// every member ONLINE, the skewed member does not refuse an operation that needs another
// member ONLINE (a volume on that member), and a member that is really stopped goes
// OFFLINE in every list within the threshold — also when it is the leader whose clock was
// ahead (its last heartbeats lie in the others' future).
func TestClockOffset(t *testing.T) {
	for _, tc := range []struct {
		name   string
		skewed int // index of the member with the wrong clock (0 is the bootstrap leader)
		offset string
		victim int // the member killed at the end
	}{
		{"follower-ahead", 2, "60s", 1},
		{"follower-behind", 2, "-60s", 1},
		{"leader-ahead", 0, "60s", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := make([]*agenttest.Agent, 3)
			for i := range ms {
				ms[i] = agenttest.New(t, fmt.Sprintf("node%d", i+1), agenttest.NewAddr(t))
			}
			skewed := ms[tc.skewed]
			skewed.DaemonArgs = []string{"--debug-clock-offset=" + tc.offset}
			for _, a := range ms {
				a.Start()
			}
			agenttest.Form(t, ms)
			setThreshold(t, ms[0], clockThreshold)
			for _, a := range ms {
				ms[0].MustRun("storage", "create", "d2", "dir", "--target", a.Name)
			}
			ms[0].MustRun("storage", "create", "d2", "dir")
			for _, via := range ms {
				waitAllOnline(t, via, 3, 10*time.Second)
			}
			for _, target := range otherThanAll(ms, skewed) {
				if err := createVolume(skewed, target.Name, "v-"+target.Name); err != nil {
					t.Fatalf("%s (clock %s): creating a volume on %s: %v", skewed.Name, tc.offset, target.Name, err)
				}
			}

			victim := ms[tc.victim]
			victim.Kill()
			killed := time.Now()
			rest := otherThanAll(ms, victim)
			for _, via := range rest {
				waitStatus(t, via, victim.Name, api.StatusOffline, clockThreshold*time.Second+5*time.Second)
			}
			t.Logf("%s OFFLINE in every list %v after kill -9", victim.Name, time.Since(killed).Round(time.Millisecond))
			for _, via := range rest {
				wait.For(t, 10*time.Second, "a volume refused on the OFFLINE "+victim.Name+" through "+via.Name, func() error {
					err := createVolume(via, victim.Name, "v2-"+via.Name)
					if err == nil || !strings.Contains(err.Error(), "offline") {
						return fmt.Errorf("creating a volume on %s: %v, want refused as offline", victim.Name, err)
					}
					return nil
				})
				list, err := agenttest.ListMembers(via)
				if err != nil {
					t.Fatalf("%s: cluster list: %v", via.Name, err)
				}
				for _, m := range list {
					if m.ServerName != victim.Name && m.Status != api.StatusOnline {
						t.Errorf("through %s: %s is %s (%s), want ONLINE", via.Name, m.ServerName, m.Status, m.Message)
					}
				}
			}
		})
	}
}
