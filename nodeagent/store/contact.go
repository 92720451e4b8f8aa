package store

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// contacts is, per follower, when the latest AppendEntries it accepted (a heartbeat or
// entries) was sent, and in which term, as the leader's transport saw the answers. A
// follower that accepts an AppendEntries of term t holds no newer term when it answers: a
// majority of voters accepting requests of term t sent after a moment proves that no
// other leader was elected between that moment and their answers (confirmLeadership).
// The time is when the request was sent, not when the answer came: an answer that was
// waiting in a socket buffer while the leader was paused says nothing of the time after
// it resumed.
type contacts struct {
	mu      sync.Mutex
	last    map[raft.ServerID]contact
	changed chan struct{} // closed at the next record, nil while nobody waits
}

type contact struct {
	term uint64
	sent time.Time
}

func newContacts() *contacts { return &contacts{last: map[raft.ServerID]contact{}} }

// record notes that id accepted an AppendEntries of term sent at sent.
func (c *contacts) record(id raft.ServerID, term uint64, sent time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.last[id]; ok && (cur.term > term || cur.term == term && !sent.After(cur.sent)) {
		return
	}
	c.last[id] = contact{term: term, sent: sent}
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// quorum reports whether self and the voters that accepted an AppendEntries of term sent
// after since make a majority of voters, and gives a channel closed at the next record.
func (c *contacts) quorum(self raft.ServerID, voters []raft.ServerID, term uint64, since time.Time) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range voters {
		if cur, ok := c.last[id]; id == self || ok && cur.term == term && cur.sent.After(since) {
			n++
		}
	}
	if n > len(voters)/2 {
		return true, nil
	}
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return false, c.changed
}

// appendAccepted records a successful AppendEntries sent at sent.
func (c *contacts) appendAccepted(id raft.ServerID, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, sent time.Time) {
	if resp.Success && resp.Term == args.Term {
		c.record(id, args.Term, sent)
	}
}
