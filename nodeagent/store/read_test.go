package store

import (
	"fmt"
	"testing"
	"time"

	"orch/internal/wait"
)

// TestFedByLeader: followers the leader feeds say so; a follower left without a leader (the
// other two stopped) stops saying so (its reads are then forwarded, not left waiting for a
// read index its replica would not reach).
func TestFedByLeader(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.leader()
	var followers []*node
	for _, nd := range c.nodes {
		if nd != leader {
			followers = append(followers, nd)
		}
	}
	for _, nd := range followers {
		wait.For(t, 5*time.Second, nd.id+" fed by the leader", func() error {
			if !nd.store.FedByLeader() {
				return fmt.Errorf("%s: not fed", nd.id)
			}
			return nil
		})
	}
	c.stop(leader)
	c.stop(followers[1])
	nd := followers[0]
	wait.For(t, 5*time.Second, nd.id+" no longer fed, alone", func() error {
		if nd.store.FedByLeader() {
			return fmt.Errorf("%s still says it is fed", nd.id)
		}
		return nil
	})
}
