package store

import (
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// hashicorp/raft reads two different members' configurations for the two halves of a
// heartbeat: the leader sends one to each follower every [HeartbeatTimeout/10,
// HeartbeatTimeout/5) of the LEADER's configuration, and a follower stands for election
// when it heard nothing for the HeartbeatTimeout of ITS OWN configuration. So a member
// runs raft with a HeartbeatTimeout Timings.LeaderStretch times its own while it leads
// (fewer heartbeats: they were nearly all of an idle member's CPU) and with its own as a
// follower (the same failure detection), switching on every leadership change
// (raft.ReloadConfig). A follower also watches its last contact with the leader itself
// (the contact watch) and has raft check it the moment the heartbeat timeout has passed,
// instead of at raft's next random check up to a timeout later. DESIGN.md "Timings" has
// the numbers.

// raftTimers are the reloadable raft timeouts this member runs with: the configured
// (follower) heartbeat and election timeouts, stretched while it leads or does not vote.
type raftTimers struct {
	raft    *raft.Raft
	stretch time.Duration // LeaderStretch, at least 1
	lease   time.Duration // the leader lease raft was started with (not reloadable)

	mu        sync.Mutex // serialises every ReloadConfig of this member
	heartbeat time.Duration
	election  time.Duration
	leading   bool
	// voter is whether this member votes in its latest raft configuration (refreshVoter);
	// true until known, so that a member never waits longer than configured by mistake.
	voter bool
	// rtt is the slowest voter's heartbeat round trip while leading (rtt.go), by which
	// the leader's heartbeat interval is shortened.
	rtt time.Duration
}

// nonVoterStretch multiplies the heartbeat timeout a member that does not vote (a stand-by,
// a spare, a member not yet or no longer in the configuration) runs raft with. Its raft
// follower loop wakes at a random point of every [timeout, 2*timeout) to check its last
// contact, only to learn that it may not stand for election: 1.7 wake-ups a second on
// each of the ~195 spares of a 200-member cluster, for nothing (issue 19). Its only
// effect is how soon such a member forgets a silent leader's name, which a new leader's
// first AppendEntries replaces at once anyway. Becoming a voter puts the configured
// timeout back as raft adopts the configuration (refreshVoter).
const nonVoterStretch = 10

func newRaftTimers(r *raft.Raft, t Timings) *raftTimers {
	return &raftTimers{raft: r, stretch: time.Duration(max(t.LeaderStretch, 1)), lease: t.LeaderLease,
		heartbeat: t.Heartbeat, election: t.Election, voter: true}
}

// attach gives the timers the raft node they reload (created after the transport, whose
// contact watch may fire before).
func (t *raftTimers) attach(r *raft.Raft) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.raft = r
}

// node is the raft node, nil before attach.
func (t *raftTimers) node() *raft.Raft {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.raft
}

// configured are the heartbeat and election timeouts as configured (a follower's).
func (t *raftTimers) configured() (heartbeat, election time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.heartbeat, t.election
}

// set changes the configured timeouts and applies them.
func (t *raftTimers) set(heartbeat, election time.Duration) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, oldElection := t.heartbeat, t.election
	t.heartbeat, t.election = heartbeat, election
	if err := t.applyLocked(); err != nil {
		t.heartbeat, t.election = old, oldElection
		return err
	}
	return nil
}

// lead switches between the leader's stretched timeouts and the configured ones.
func (t *raftTimers) lead(leading bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.leading == leading {
		return
	}
	t.leading = leading
	_ = t.applyLocked() // both forms were valid when configured
}

// refreshVoter reads whether member id votes in raft's latest configuration and switches
// between the configured timeouts and a non-voter's stretched ones. It runs when raft
// starts, after a bootstrap, on leadership changes, and once raft has handled an
// AppendEntries carrying a configuration entry or a snapshot (ballotTransport.filter).
func (t *raftTimers) refreshVoter(id raft.ServerID) {
	r := t.node()
	if r == nil {
		return
	}
	voter := false
	for _, sv := range r.GetConfiguration().Configuration().Servers {
		if sv.ID == id {
			voter = sv.Suffrage == raft.Voter
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.voter == voter {
		return
	}
	t.voter = voter
	_ = t.applyLocked() // both forms were valid when configured
}

// setRTT sets the slowest voter's heartbeat round trip (rtt.go), applied when it moved by
// rttStep or more.
func (t *raftTimers) setRTT(rtt time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := rtt - t.rtt; d < rttStep && d > -rttStep {
		return
	}
	t.rtt = rtt
	if t.leading {
		_ = t.applyLocked()
	}
}

// votes reports whether this member votes in its latest raft configuration.
func (t *raftTimers) votes() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.voter
}

// running are the timeouts raft should run with now.
func (t *raftTimers) running() (heartbeat, election time.Duration) {
	stretch := time.Duration(1)
	switch {
	case t.leading:
		stretch = t.stretch
	case !t.voter:
		stretch = nonVoterStretch
	}
	hb := t.heartbeat * stretch
	if t.leading {
		// Raft sends heartbeats every [hb/10, hb/5); the lease needs one from a quorum
		// within it. The lease is fixed when raft starts, the heartbeat timeout changes
		// live: a timeout raised past the running lease's reach made the leader step
		// down every lease for want of contact (leaderReach). Each heartbeat waits for
		// the previous answer: the interval is shortened by the slowest voter's round
		// trip (rtt.go).
		hb = max(min(hb-5*t.rtt, leaderReach*t.lease), t.heartbeat)
	}
	return hb, max(t.election, hb)
}

// leaderReach bounds a leader's stretched heartbeat timeout to this many leases: its
// heartbeats are then at most 0.8 lease apart.
const leaderReach = 4

func (t *raftTimers) applyLocked() error {
	if t.raft == nil {
		return nil // attach starts raft with the configured timeouts
	}
	rc := t.raft.ReloadableConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout = t.running()
	return t.raft.ReloadConfig(rc)
}

// checkNow has a follower's raft check its last contact with the leader at once rather
// than at its next random check: raft re-arms the follower's timer to fire immediately
// when the heartbeat timeout is lowered, so lower it by a millisecond and put it back.
// It does nothing without room above the leader lease (raft requires lease <= heartbeat),
// while this member leads, or while it does not vote.
func (t *raftTimers) checkNow() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.raft == nil || t.leading || !t.voter || t.heartbeat-time.Millisecond < t.lease {
		return // a non-voter never stands for election: nothing to check
	}
	rc := t.raft.ReloadableConfig()
	rc.HeartbeatTimeout = t.heartbeat - time.Millisecond
	if err := t.raft.ReloadConfig(rc); err != nil {
		return
	}
	_ = t.applyLocked()
}

// contactCheck is what the contact watch does next for a member in state, last heard
// from the leader at last, which doubts a leader silent for patience: wait (check again
// after wait), or have raft check its contact now.
func contactCheck(state raft.RaftState, leaderKnown bool, last, now time.Time, patience time.Duration) (check bool, wait time.Duration) {
	if state != raft.Follower || !leaderKnown {
		return false, patience // raft's own timers run candidates; a leader has no leader
	}
	if silent := now.Sub(last); silent < patience {
		return false, patience - silent + time.Millisecond
	}
	return true, patience
}

// patience is how long this member lets its leader be silent before doubting it: the
// heartbeat timeout plus rank*hb/8, rank being its place among the voters by ID. Voters
// that noticed the silence at the same moment both won each other's pre-vote (a candidate
// has no leader), stood in the same term and split the vote: another election timeout
// (0.8-1.6 s with the defaults) lost. Raft's own random timers spread them; so do these
// steps, larger than a pre-vote's round trip (hb/8: 100 ms with the defaults, as much as
// the round trip of a 100 ms RTT link). The first to doubt is refused by the others while
// they still hear nobody's silence (they "have a leader"); the next one, a step later, wins.
func patience(hb time.Duration, self raft.ServerID, conf raft.Configuration) time.Duration {
	rank := max(voterRank(self, "", conf), 0)
	return hb + time.Duration(rank)*hb/8
}

// voterRank is self's place by ID among the voters of conf other than except ("" for
// none); -1 when self is not one of them.
func voterRank(self, except raft.ServerID, conf raft.Configuration) int {
	var voters []string
	for _, sv := range conf.Servers {
		if sv.Suffrage == raft.Voter && sv.ID != except {
			voters = append(voters, string(sv.ID))
		}
	}
	slices.Sort(voters)
	return slices.Index(voters, string(self))
}

// contactWatch makes a follower notice a silent leader when its patience (the heartbeat
// timeout and a step by rank) has passed since the last contact. raft checks only when a timer armed at a random point
// in [timeout, 2*timeout) fires: a dead leader was noticed 0.4-0.8 s after its last
// heartbeat (default timings), and with PreVote the election waits for a majority of
// voters to have noticed, so for the slower of two. The transport pushes the timer back
// on every AppendEntries that arrives (noteContact), so a member that hears its leader
// never wakes up for it: an idle member's CPU is mostly wake-ups.
type contactWatch struct {
	timer *time.Timer
}

// startContactWatch arms the watch; Close stops it.
func (s *Store) startContactWatch() {
	hb, _ := s.timers.configured()
	s.contact.timer = time.AfterFunc(hb, s.contactSilent)
	s.ballot.onContact = s.noteContact
}

// noteContact runs on every AppendEntries (heartbeat or not) this member receives.
func (s *Store) noteContact() {
	hb, _ := s.timers.configured()
	s.contact.timer.Reset(hb + time.Millisecond)
}

// contactSilent runs when no AppendEntries arrived for a heartbeat timeout.
func (s *Store) contactSilent() {
	if s.checkOpen() != nil {
		return
	}
	hb, _ := s.timers.configured()
	r := s.timers.node()
	if r == nil {
		s.contact.timer.Reset(hb) // raft is being created
		return
	}
	leader, _ := r.LeaderWithID()
	state := r.State()
	wait := hb
	if f := r.GetConfiguration(); f.Error() == nil {
		wait = patience(hb, raft.ServerID(s.cfg.ID), f.Configuration())
	}
	check, wait := contactCheck(state, leader != "", r.LastContact(), time.Now(), wait)
	switch {
	case check:
		s.timers.checkNow() // the next AppendEntries, from whichever leader, re-arms the watch
	case state == raft.Follower && leader != "":
		s.contact.timer.Reset(wait) // raft heard from it meanwhile
	}
}
