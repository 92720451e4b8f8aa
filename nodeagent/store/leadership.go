package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// leadership follows raft's leadership notifications: it answers "am I
// leader, since which index", wakes Bootstrap, and feeds LeaderChanges
// subscribers.
type leadership struct {
	raft     *raft.Raft
	onChange func(leader bool) // called after every change, from the follower goroutine

	mu      sync.Mutex
	leader  bool
	term    uint64        // raft term in which leadership was gained
	start   uint64        // last log index when it was gained
	changed chan struct{} // closed and replaced on every change
	subs    []chan bool
	done    bool

	stop    chan struct{}
	stopped chan struct{}
}

// newLeadership starts following notify (raft Config.NotifyCh); onChange,
// if not nil, is called after every change and must not block.
func newLeadership(r *raft.Raft, notify <-chan bool, onChange func(bool)) *leadership {
	l := &leadership{raft: r, onChange: onChange, changed: make(chan struct{}), stop: make(chan struct{}), stopped: make(chan struct{})}
	go l.run(notify)
	return l
}

// run consumes notifications promptly (raft blocks on NotifyCh).
func (l *leadership) run(notify <-chan bool) {
	defer close(l.stopped)
	for {
		select {
		case v := <-notify:
			l.set(v)
			if l.onChange != nil {
				l.onChange(v)
			}
		case <-l.stop:
			return
		}
	}
}

// set records a leadership change. On gaining leadership it notes the term
// and the last log index: every entry committed before this term is at or
// below that index (leader completeness), which ReadIndex relies on.
func (l *leadership) set(leader bool) {
	var term, start uint64
	if leader {
		term, start = l.raft.CurrentTerm(), l.raft.LastIndex()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leader, l.term, l.start = leader, term, start
	close(l.changed)
	l.changed = make(chan struct{})
	for _, c := range l.subs {
		sendLatest(c, leader)
	}
}

// sendLatest replaces any unread value in c (capacity 1) with v.
func sendLatest(c chan bool, v bool) {
	select {
	case <-c:
	default:
	}
	c <- v
}

// termStart returns the term and index noted when leadership was gained.
func (l *leadership) termStart() (term, start uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term, l.start, l.leader
}

// subscribe returns a channel that receives the current leadership state at
// once and every later change (latest value wins if the reader is slow).
func (l *leadership) subscribe() <-chan bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := make(chan bool, 1)
	if l.done {
		close(c)
		return c
	}
	c <- l.leader
	l.subs = append(l.subs, c)
	return c
}

// waitLeader returns once this node is leader and the notification has been
// processed.
func (l *leadership) waitLeader(ctx context.Context, closed <-chan struct{}) error {
	for {
		l.mu.Lock()
		leader, changed := l.leader, l.changed
		l.mu.Unlock()
		if leader {
			return nil
		}
		select {
		case <-changed:
		case <-closed:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("waiting for leadership: %w", ctx.Err())
		}
	}
}

// close stops following notifications and closes every subscription.
func (l *leadership) close() {
	close(l.stop)
	<-l.stopped
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done, l.leader = true, false
	for _, c := range l.subs {
		close(c)
	}
	l.subs = nil
}

// leaderMoves is closed and replaced whenever the leader this member knows changes (to
// another member, or to none when an election starts): see LeaderMoved.
type leaderMoves struct {
	mu sync.Mutex
	ch chan struct{}
}

// LeaderMoved returns a channel closed at the next change of the leader this member knows:
// a request waiting on a leader that stopped answering (frozen, cut off) can be asked again
// of the next one instead of waiting for its own timeout.
func (s *Store) LeaderMoved() <-chan struct{} {
	s.moves.mu.Lock()
	defer s.moves.mu.Unlock()
	return s.moves.ch
}

// watchLeaderMoves follows raft's leader observations until the store closes.
func (s *Store) watchLeaderMoves() {
	obs := make(chan raft.Observation, 4)
	s.moves.ch = make(chan struct{})
	observer := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(observer)
	go func() {
		for {
			select {
			case <-obs: // a dropped observation is covered by the next one's close
				s.moves.mu.Lock()
				close(s.moves.ch)
				s.moves.ch = make(chan struct{})
				s.moves.mu.Unlock()
			case <-s.closed:
				s.raft.DeregisterObserver(observer)
				return
			}
		}
	}()
}
