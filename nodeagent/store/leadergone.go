package store

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// A leader whose process ends (kill -9, a crash, the OOM killer, a host that stops its
// processes on the way down) has its kernel close its connections: the followers read EOF
// (or a reset) on the connections the leader had opened to them. Raft waits for the
// heartbeat timeout all the same, and cannot be told to stand sooner: its follower check
// needs the leader silent for its heartbeat timeout, which may not go below the leader
// lease (not reloadable). So the heartbeat timeout bounded failover, and the heartbeats
// it needs (a leader must reach a quorum within its lease) were most of an idle member's
// CPU (issue 19).
//
// The leader-gone watch closes that gap for the failures that announce themselves: when
// a connection from the leader ends, a voting follower dials the leader's raft address
// (the same TLS and fence handshake raft uses). Refused (nothing listens there: the
// leader's process is gone), the follower hands its own raft a TimeoutNow, the RPC a
// leader sends in a leadership transfer, and raft stands at once; the vote request it
// sends carries the transfer flag, so the other voters vote even though they still name
// the old leader. Voters step in turn (turnStep by rank among the voters left), and one
// that hears a leader or a candidate meanwhile stands down, so two never split the vote.
// Any other outcome changes nothing — a dial that connects (the leader just recycled a
// connection), or dials that time out (a host that vanished without closing anything: a
// power cut, a partition) or fail otherwise until the heartbeat timeout (a relay in
// between, a loaded peer; a dying process fails the dials its listener queued, then
// refuses) — and the heartbeat timeout and the contact watch (heartbeats.go) decide, as
// before.

// turnStep is how long each voter waits after the one ranked before it: long enough for
// the vote request of the one before to arrive (its term then stops this one), so hb/8,
// the contact watch's step (heartbeats.go: the heartbeat timeout is chosen for the link,
// and hb/8 is a round trip of the links it suits), within [goneStep, maxGoneStep]. At
// 100 ms RTT a fixed 50 ms step had the second voter stand as the first one's request
// was on its way: both in the same term, a split vote, an election timeout lost (1.4 s
// instead of ~0.7). The step is paid only when the voters before did not stand.
func turnStep(hb time.Duration) time.Duration {
	return min(max(goneStep, hb/8), maxGoneStep)
}

// goneStep and maxGoneStep bound turnStep: maxGoneStep is a one-way trip of 200 ms and
// more, past any link a cluster's members should be spread over.
const (
	goneStep    = 50 * time.Millisecond
	maxGoneStep = 200 * time.Millisecond
)

// goneWatch is one member's leader-gone watch.
type goneWatch struct {
	probing atomic.Bool // one probe at a time
	probes  atomic.Uint64
	stands  atomic.Uint64 // TimeoutNows handed to raft: tested
}

// watchedLayer reports the end of every connection raft accepted (one the leader opened).
type watchedLayer struct {
	raft.StreamLayer
	ended func()
}

// Accept implements net.Listener.
func (l watchedLayer) Accept() (net.Conn, error) {
	c, err := l.StreamLayer.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c, ended: l.ended}, nil
}

// watchedConn calls ended once when a read finds the connection closed by the other side.
type watchedConn struct {
	net.Conn
	once  sync.Once
	ended func()
}

// Read implements net.Conn.
func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && closedByPeer(err) {
		c.once.Do(c.ended)
	}
	return n, err
}

// closedByPeer reports a read or dial error that means the other end closed or refused the
// connection (not a timeout, not this side closing it).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE)
}

// connectionEnded runs when a connection a leader opened to this member ends: a voting
// follower probes its leader, once at a time.
func (s *Store) connectionEnded() {
	if s.checkOpen() != nil || !s.gone.probing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.gone.probing.Store(false)
		s.probeLeader()
	}()
}

// probeLeader dials the leader this member follows; when the leader's process is gone it
// waits its turn among the voters and has raft stand for election.
func (s *Store) probeLeader() {
	r := s.timers.node()
	if r == nil || r.State() != raft.Follower || !s.timers.votes() {
		return
	}
	addr, id := r.LeaderWithID()
	if addr == "" {
		return
	}
	asked, term := time.Now(), r.CurrentTerm()
	s.gone.probes.Add(1)
	err := s.dialLeader(addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return // it answered, or nothing certain: the heartbeat timeout decides
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	rank := voterRank(raft.ServerID(s.cfg.ID), id, f.Configuration())
	if rank < 0 {
		return
	}
	hb, _ := s.timers.configured()
	select {
	case <-time.After(time.Duration(rank) * turnStep(hb)):
	case <-s.closed:
		return
	}
	if _, now := r.LeaderWithID(); now != id || r.State() != raft.Follower || r.LastContact().After(asked) || r.CurrentTerm() != term {
		return // a voter ranked before this one stood (its vote request came) or won, or the leader came back
	}
	s.log.Warn("the leader's process is gone (its connection closed, its port refuses connections): standing for election now",
		"leader", string(id), "address", string(addr), "dial", err)
	if s.ballot.standNow() == nil {
		s.gone.stands.Add(1)
	}
}

// dialLeader dials the leader's raft address: nil when it answered, an error wrapping
// ECONNREFUSED when nothing listens there. Any other failure is tried again, probePause
// apart, until a leader speaks or the heartbeat timeout has passed (the contact watch's
// turn then): a dying process keeps its listener, and the dials it queued but never
// answers, until it is gone (a reset or a handshake timeout; the next dial is refused),
// and on a loaded machine a killed process may wait for the CPU to finish closing its
// sockets; a relay in between or a loaded peer fails a dial too and then answers, and a
// host lost without a word never refuses.
func (s *Store) dialLeader(addr raft.ServerAddress) error {
	hb, _ := s.timers.configured()
	start := time.Now()
	var err error
	for try := 0; ; try++ {
		if try > 0 {
			if time.Since(start)+probePause >= hb {
				return err
			}
			select {
			case <-time.After(probePause):
			case <-s.closed:
				return ErrClosed
			}
			if r := s.timers.node(); r == nil || r.State() != raft.Follower || r.LastContact().After(start) {
				return err // a leader spoke meanwhile, or this member no longer follows
			}
		}
		var c net.Conn
		c, err = s.cfg.Stream.Dial(addr, max(hb/4, 50*time.Millisecond))
		if err == nil {
			c.Close()
			return nil
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
	}
}

// probePause: see dialLeader. A killed lab host of a 200-member cluster took ~0.1 s to die
// (its listener queued dials meanwhile); a 3-member cluster under load 15 sometimes more
// than the 0.5 s the probe once gave up after (kill -9 then took 1.1-1.4 s).
const probePause = 50 * time.Millisecond

// standNow hands raft a TimeoutNow, as a leader transferring leadership would send: raft
// becomes a candidate at once, and its vote requests ask the others to vote although they
// still have a leader.
func (t *ballotTransport) standNow() error {
	if err := t.broken(); err != nil {
		return err // a broken member does not stand (broken.go)
	}
	resp := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: &raft.TimeoutNowRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}}, RespChan: resp}
	select {
	case t.rpcs <- rpc:
	case <-t.stop:
		return ErrClosed
	}
	select {
	case r := <-resp:
		return r.Error
	case <-t.stop:
		return ErrClosed
	}
}
