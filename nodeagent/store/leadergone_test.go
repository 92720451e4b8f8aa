package store

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
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
	gained := gains(c, old)
	start := time.Now()
	c.kill(old)
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

// TestGoneLeaderFoundWhileItsPortLingers: a killed process on a loaded machine may finish
// closing its sockets late, its port failing dials (reset) before it refuses them. Here
// every dial to the stopped leader fails so for a second: the followers' probes keep trying
// and stand once it refuses, well within the 4 s heartbeat timeout. The probe used to give
// up after 0.5 s, leaving it to the timeout.
func TestGoneLeaderFoundWhileItsPortLingers(t *testing.T) {
	lingers := &lingering{}
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Timings = goneTimings()
		cfg.Stream = lingerLayer{StreamLayer: cfg.Stream, l: lingers}
	})
	c.waitConverged()
	old := c.leader()
	gained := gains(c, old)
	lingers.set(old.addr, time.Now().Add(time.Second))
	start := time.Now()
	c.kill(old)
	select {
	case id := <-gained:
		t.Logf("%s leads %v after the leader stopped", id, time.Since(start).Round(time.Millisecond))
	case <-time.After(2500 * time.Millisecond):
		t.Fatalf("no new leader 2.5 s after the leader stopped (its port failing dials for 1 s, heartbeat timeout %v)", goneTimings().Heartbeat)
	}
}

// lingering is an address whose dials fail with a reset until a time.
type lingering struct {
	mu    sync.Mutex
	addr  string
	until time.Time
}

func (l *lingering) set(addr string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addr, l.until = addr, until
}

func (l *lingering) failing(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return addr == l.addr && time.Now().Before(l.until)
}

// lingerLayer fails dials to the lingering address with ECONNRESET.
type lingerLayer struct {
	raft.StreamLayer
	l *lingering
}

// Dial implements raft.StreamLayer.
func (l lingerLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.l.failing(string(addr)) {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return l.StreamLayer.Dial(addr, timeout)
}

// TestGoneLeaderOverSlowLinksOneElection: two followers 100 ms from each other (each way)
// learn at the same moment that their leader is gone. The first voter in rank stands; its
// vote request takes 100 ms to reach the other voter, which must not stand meanwhile (its
// turn comes later, and it stands down on seeing the new term). Two standing in one term
// split the vote, and the next try waits for the election timeout (4 s). It failed with
// the fixed 50 ms step between voters. The leader's connections stay open (held) and both
// followers are told together, so that when each notices does not depend on the order in
// which a stopping store closes its connections.
func TestGoneLeaderOverSlowLinksOneElection(t *testing.T) {
	c := newDelayedCluster(t, goneTimings(), 100*time.Millisecond)
	c.waitConverged()
	old := c.leader()
	term := old.store.raft.CurrentTerm()
	gained := gains(c, old)
	var followers []*node
	for _, nd := range c.running() {
		if nd != old {
			followers = append(followers, nd)
		}
	}
	c.stop(old)
	start := time.Now()
	for _, nd := range followers {
		nd.store.connectionEnded()
	}
	select {
	case id := <-gained:
		t.Logf("%s leads %v after the followers noticed", id, time.Since(start).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatalf("no new leader 3 s after the followers noticed the leader gone (election timeout %v): a split vote?", goneTimings().Election)
	}
	for _, nd := range followers {
		if got := nd.store.raft.CurrentTerm(); got != term+1 {
			t.Errorf("%s: term %d -> %d: more than one election", nd.id, term, got)
		}
	}
}

// newDelayedCluster is a 3-member cluster with timings whose members are delay apart each
// way (delayLayer); the connections its stores close are held open for their peers until
// the test ends, and let go before the stores close (cleanups run last first).
func newDelayedCluster(t *testing.T, timings Timings, delay time.Duration) *cluster {
	held := &heldConns{}
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Timings = timings
		cfg.Stream = delayLayer{StreamLayer: cfg.Stream, delay: delay, held: held}
	})
	t.Cleanup(held.closeAll)
	return c
}

// delayLayer delays everything written on its connections by delay (a slow link each way);
// the connections it closes stay open for the peer until held.closeAll.
type delayLayer struct {
	raft.StreamLayer
	delay time.Duration
	held  *heldConns
}

// Accept implements net.Listener.
func (l delayLayer) Accept() (net.Conn, error) {
	c, err := l.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return newDelayConn(c, l.delay, l.held), nil
}

// Dial implements raft.StreamLayer.
func (l delayLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := l.StreamLayer.Dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	return newDelayConn(c, l.delay, l.held), nil
}

// heldConns are connections closed by their owner but not yet for their peer; after
// closeAll none is held.
type heldConns struct {
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (h *heldConns) add(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		c.Close()
		return
	}
	h.conns = append(h.conns, c)
}

func (h *heldConns) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, c := range h.conns {
		c.Close()
	}
}

// delayConn writes each chunk delay after it was asked to, in order.
type delayConn struct {
	net.Conn
	delay  time.Duration
	held   *heldConns
	mu     sync.Mutex
	closed bool
	q      chan delayed
}

type delayed struct {
	data []byte
	at   time.Time
}

func newDelayConn(c net.Conn, delay time.Duration, held *heldConns) *delayConn {
	dc := &delayConn{Conn: c, delay: delay, held: held, q: make(chan delayed, 1<<12)}
	go dc.send()
	return dc
}

func (c *delayConn) send() {
	for d := range c.q {
		time.Sleep(time.Until(d.at))
		if _, err := c.Conn.Write(d.data); err != nil {
			break
		}
	}
	c.held.add(c.Conn)
}

// Write implements net.Conn.
func (c *delayConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	c.q <- delayed{data: append([]byte(nil), p...), at: time.Now().Add(c.delay)}
	return len(p), nil
}

// Close implements net.Conn: what was written is still delivered, the peer reads no end.
func (c *delayConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.q)
	}
	return nil
}

// gains reports the name of each running member but old that becomes the leader.
func gains(c *cluster, old *node) <-chan string {
	gained := make(chan string, len(c.running()))
	for _, nd := range c.running() {
		if nd != old {
			go watchGain(nd.id, nd.store.LeaderChanges(), gained)
		}
	}
	return gained
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
