package store

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"orch/internal/wait"
)

// goneTimings are the test timings with a heartbeat timeout long enough that neither
// raft's follower check nor the contact watch can replace a leader within goneWithin.
func goneTimings() Timings {
	t := testTimings()
	t.Heartbeat, t.Election, t.LeaderLease = 4*time.Second, 4*time.Second, 3*time.Second
	return t
}

// goneWithin is how soon a closed leader must be replaced: a quarter of the heartbeat
// timeout, which is what raft and the contact watch would wait at the least.
const goneWithin = time.Second

// TestGoneLeaderReplacedAtOnce stops the leader's store (its connections close, its port
// refuses, as when its process is killed) in a cluster whose followers would wait 4 s of
// silence before standing, and expects a new leader within a second: the followers read
// the end of the leader's connections, find its port refusing and stand at once.
func TestGoneLeaderReplacedAtOnce(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.Timings = goneTimings() })
	c.waitConverged()
	old := c.leader()
	gained := make(chan string, 2)
	for _, nd := range c.running() {
		if nd != old {
			go watchGain(nd.id, nd.store.LeaderChanges(), gained)
		}
	}
	start := time.Now()
	c.stop(old)
	select {
	case id := <-gained:
		t.Logf("%s leads %v after the leader stopped", id, time.Since(start).Round(time.Millisecond))
	case <-time.After(goneWithin):
		t.Fatalf("no new leader %v after the leader stopped (heartbeat timeout %v): the followers did not act on its closed connections",
			goneWithin, goneTimings().Heartbeat)
	}
	stands := 0
	for _, nd := range c.running() {
		stands += int(nd.store.gone.stands.Load())
	}
	if stands == 0 {
		t.Fatal("a new leader, but no follower stood through the leader-gone watch")
	}
	// The new leader serves writes: the election was a real one.
	c.exec(stmt("CREATE TABLE IF NOT EXISTS after_gone (x INTEGER)"))
}

// watchGain sends id on gained when ch reports that the member became leader.
func watchGain(id string, ch <-chan bool, gained chan<- string) {
	for v := range ch {
		if v {
			gained <- id
			return
		}
	}
}

// TestLiveLeaderKeepsLeading tells a follower that a connection from its leader ended
// while the leader is alive (raft's transport recycles connections): the follower probes,
// finds the leader answering and leaves it in charge. It is the first voter in rank, which
// would stand at once (the others wait for a heartbeat that also keeps them down).
func TestLiveLeaderKeepsLeading(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.Timings = goneTimings() })
	c.waitConverged()
	l := c.leader()
	term := l.store.raft.CurrentTerm()
	var f *node
	for _, nd := range c.running() { // running is in ID order: the first follower ranks 0
		if nd != l && f == nil {
			f = nd
		}
	}
	f.store.connectionEnded()
	wait.For(t, 10*time.Second, "the follower's probe", func() error {
		if f.store.gone.probes.Load() == 0 || f.store.gone.probing.Load() {
			return errors.New("probe not done")
		}
		return nil
	})
	if n := f.store.gone.stands.Load(); n != 0 {
		t.Fatalf("the follower stood %d time(s) against a live leader", n)
	}
	if !l.store.IsLeader() || l.store.raft.CurrentTerm() != term {
		t.Fatalf("leadership moved: %s leads %v, term %d -> %d", l.id, l.store.IsLeader(), term, l.store.raft.CurrentTerm())
	}
}

// TestVoterRank orders the voters left by ID, the gone leader and non-voters excluded.
func TestVoterRank(t *testing.T) {
	conf := raft.Configuration{Servers: []raft.Server{
		{ID: "c", Suffrage: raft.Voter}, {ID: "a", Suffrage: raft.Voter}, {ID: "b", Suffrage: raft.Voter},
		{ID: "d", Suffrage: raft.Nonvoter},
	}}
	for self, want := range map[raft.ServerID]int{"b": 0, "c": 1, "a": -1, "d": -1} {
		if got := voterRank(self, "a", conf); got != want {
			t.Errorf("voterRank(%s, except a) = %d, want %d", self, got, want)
		}
	}
}

// TestClosedByPeer tells a peer's close or refusal from a timeout or this side's close.
func TestClosedByPeer(t *testing.T) {
	for err, want := range map[error]bool{
		io.EOF: true, fmt.Errorf("tls: %w", io.ErrUnexpectedEOF): true,
		&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}: true,
		&net.OpError{Op: "read", Err: syscall.ECONNRESET}:   true,
		net.ErrClosed: false, &net.OpError{Op: "dial", Err: errTimeout{}}: false,
	} {
		if got := closedByPeer(err); got != want {
			t.Errorf("closedByPeer(%v) = %v, want %v", err, got, want)
		}
	}
}

type errTimeout struct{}

func (errTimeout) Error() string { return "i/o timeout" }
func (errTimeout) Timeout() bool { return true }
