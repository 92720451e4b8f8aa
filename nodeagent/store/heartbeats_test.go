package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"orch/internal/wait"
)

// TestIdleFollowerHearsFewAppends counts the AppendEntries (heartbeats included) each
// follower of an idle 3-voter cluster with the default timings receives in a few
// seconds. With raft's own heartbeat interval (Heartbeat/10 to /5: every 40-80 ms) a
// follower received ~20 a second, nearly all of an idle member's CPU; the leader's
// stretched heartbeat timeout (LeaderStretch 3: every 120-240 ms) plus the idle commit
// messages (every 2-4 s) make it ~6 (with the 200 ms commit timeout: ~9).
func TestIdleFollowerHearsFewAppends(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.Timings = DefaultTimings() })
	c.waitConverged()
	l := c.leader()
	wait.For(t, 10*time.Second, "the leader's stretched heartbeat timeout", func() error {
		return checkRunningHeartbeat(l.store, time.Duration(DefaultTimings().LeaderStretch)*DefaultTimings().Heartbeat)
	})
	const window = 4 * time.Second
	before := map[string]uint64{}
	for _, nd := range c.running() {
		before[nd.id] = nd.store.ballot.appends.Load()
	}
	time.Sleep(window) // the measurement window, not a settling wait
	for _, nd := range c.running() {
		if nd == l {
			continue
		}
		got := nd.store.ballot.appends.Load() - before[nd.id]
		perSecond := float64(got) / window.Seconds()
		t.Logf("%s received %d AppendEntries in %v (%.1f/s)", nd.id, got, window, perSecond)
		if perSecond > 7.5 {
			t.Errorf("%s received %.1f AppendEntries a second while idle, want at most 7.5 (stretched heartbeats every 120-240 ms and commit messages every 2-4 s)", nd.id, perSecond)
		}
	}
}

// checkRunningHeartbeat fails unless s runs raft with heartbeat timeout want.
func checkRunningHeartbeat(s *Store, want time.Duration) error {
	s.timers.mu.Lock()
	rtt, hb, leading := s.timers.rtt, s.timers.heartbeat, s.timers.leading
	s.timers.mu.Unlock()
	if leading && rtt > 0 { // a loaded machine's round trips shorten the stretch (rtt.go)
		want = max(want-5*rtt, hb)
	}
	if got := s.raft.ReloadableConfig().HeartbeatTimeout; got != want {
		return fmt.Errorf("%s runs raft with heartbeat timeout %v, want %v", s.cfg.ID, got, want)
	}
	return nil
}

// TestLeaderStretchFollowsLeadership transfers leadership and checks that the new leader
// runs raft with the stretched heartbeat timeout, the old one with the configured one
// again (else, as a follower, it would wait four timeouts before doubting a dead leader),
// and that SetElectionTimings changes the configured timeouts under the stretch.
func TestLeaderStretchFollowsLeadership(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Timings = testTimings()
		cfg.Timings.LeaderStretch = 3
		cfg.Timings.LeaderLease = 190 * time.Millisecond // reaches 4*190 = 760ms: 3hb fits, 6hb does not
	})
	hb := testTimings().Heartbeat
	reach := leaderReach * 190 * time.Millisecond
	old := c.leader()
	wait.For(t, 10*time.Second, "stretched on the first leader", func() error { return checkRunningHeartbeat(old.store, 3*hb) })
	wait.For(t, 10*time.Second, "a leadership transfer", func() error {
		return old.store.TransferLeadership(testContext(t, 5*time.Second))
	})
	now := c.leader()
	wait.For(t, 10*time.Second, "the stretch moving with leadership", func() error {
		for _, nd := range c.running() {
			want := hb
			if nd == now {
				want = 3 * hb
			}
			if err := checkRunningHeartbeat(nd.store, want); err != nil {
				return err
			}
		}
		return nil
	})
	// Raised live past what the lease (fixed at start) can reach, the stretch stops at
	// leaderReach leases: heartbeats 6hb/5 apart would miss the 190ms lease and make the
	// leader step down every lease.
	if err := now.store.SetElectionTimings(2*hb, 2*hb); err != nil {
		t.Fatal(err)
	}
	if err := checkRunningHeartbeat(now.store, reach); err != nil {
		t.Error(err)
	}
	if got, el := now.store.ElectionTimings(); got != 2*hb || el != 2*hb {
		t.Errorf("ElectionTimings = %v, %v; want the configured %v, %v", got, el, 2*hb, 2*hb)
	}
	if el := now.store.raft.ReloadableConfig().ElectionTimeout; el != reach {
		t.Errorf("the leader runs raft with election timeout %v, want %v (raft requires it >= the heartbeat timeout)", el, reach)
	}
	if !now.store.IsLeader() {
		t.Errorf("%s lost leadership with the raised timeouts", now.id)
	}
}

// TestNonVoterRunsStretched: a member that does not vote runs raft with the heartbeat
// timeout stretched nonVoterStretch times (its follower loop only woke to learn it may not
// stand), from before it is added (a spare), as a stand-by, and again once demoted; the
// moment it votes it runs the configured one, so that it notices a dead leader as fast as
// the other voters.
func TestNonVoterRunsStretched(t *testing.T) {
	c := newCluster(t, 2, func(cfg *Config) { cfg.Timings = testTimings() })
	hb := testTimings().Heartbeat
	spare := newNode(t, "n2", func(cfg *Config) { cfg.Timings = testTimings() })
	if err := checkRunningHeartbeat(spare.store, nonVoterStretch*hb); err != nil {
		t.Errorf("outside the configuration: %v", err)
	}
	c.join(spare, false)
	wait.For(t, 10*time.Second, "a stand-by's stretched timeout", func() error { return checkRunningHeartbeat(spare.store, nonVoterStretch*hb) })
	ctx := testContext(t, 10*time.Second)
	if err := c.leader().store.AddVoter(ctx, spare.id, spare.addr); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the configured timeout once it votes", func() error { return checkRunningHeartbeat(spare.store, hb) })
	if el := spare.store.raft.ReloadableConfig().ElectionTimeout; el != testTimings().Election {
		t.Errorf("a voter runs raft with election timeout %v, want the configured %v", el, testTimings().Election)
	}
	if err := c.leader().store.DemoteVoter(ctx, spare.id); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "stretched again once demoted", func() error { return checkRunningHeartbeat(spare.store, nonVoterStretch*hb) })
}

// TestContactCheck is the contact watch's decision: a follower with a known leader has raft
// check its contact once the heartbeat timeout has passed since the last one, and
// otherwise sleeps until it would have.
func TestContactCheck(t *testing.T) {
	hb := 400 * time.Millisecond
	now := time.Now()
	cases := []struct {
		name        string
		state       raft.RaftState
		leaderKnown bool
		silent      time.Duration
		check       bool
		wait        time.Duration
	}{
		{"heard recently", raft.Follower, true, 100 * time.Millisecond, false, 301 * time.Millisecond},
		{"silent for the timeout", raft.Follower, true, hb, true, hb},
		{"silent for longer", raft.Follower, true, 3 * hb, true, hb},
		{"no leader known (raft timed out already)", raft.Follower, false, 3 * hb, false, hb},
		{"leader", raft.Leader, true, 3 * hb, false, hb},
		{"candidate", raft.Candidate, false, 3 * hb, false, hb},
	}
	for _, tc := range cases {
		check, wait := contactCheck(tc.state, tc.leaderKnown, now.Add(-tc.silent), now, hb)
		if check != tc.check || wait != tc.wait {
			t.Errorf("%s: contactCheck = %v, %v; want %v, %v", tc.name, check, wait, tc.check, tc.wait)
		}
	}
}

// TestSilentLeaderNoticedAtTheTimeout closes the leader of a cluster whose followers' raft
// checks its contact only every 30 heartbeat timeouts (raft re-arms its follower timer at
// a random point in [HeartbeatTimeout, 2*HeartbeatTimeout): the test raises raft's timeout
// behind raftTimers' back) and expects a new leader long before raft's own check would
// come: the contact watch noticed the silence after the configured heartbeat timeout.
func TestSilentLeaderNoticedAtTheTimeout(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.Timings = testTimings() })
	c.waitConverged()
	old := c.leader()
	hb := testTimings().Heartbeat
	// Followers' raft timers are armed now for [hb, 2hb); make every later re-arm
	// [30hb, 60hb) by raising the heartbeat timeout in raft only (not in raftTimers, which
	// the contact watch reads): only the contact watch can then notice the silence within 30hb.
	for _, nd := range c.running() {
		if nd == old {
			continue
		}
		rc := nd.store.raft.ReloadableConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout = 30*hb, 30*hb
		if err := nd.store.raft.ReloadConfig(rc); err != nil {
			t.Fatal(err)
		}
	}
	// The timers armed before the change fire within 2hb and re-arm with 30hb: wait that
	// out (a known timer, not a settling time), else one of them could notice the silence.
	time.Sleep(2 * hb)
	gained := make(chan string, 2)
	for _, nd := range c.running() {
		if nd == old {
			continue
		}
		go func(id string, ch <-chan bool) {
			for v := range ch {
				if v {
					gained <- id
					return
				}
			}
		}(nd.id, nd.store.LeaderChanges())
	}
	start := time.Now()
	c.stop(old)
	select {
	case id := <-gained:
		t.Logf("%s leads %v after the leader stopped", id, time.Since(start).Round(time.Millisecond))
	case <-time.After(25 * hb):
		t.Fatalf("no new leader %v after the leader stopped: the followers did not notice the silence before raft's own check", 25*hb)
	}
}

// TestPatienceStepsByRank gives each voter its own patience, a step of hb/8 apart by ID, so
// that two voters never doubt a silent leader at the same moment (and split the vote).
func TestPatienceStepsByRank(t *testing.T) {
	hb := 400 * time.Millisecond
	conf := raft.Configuration{Servers: []raft.Server{
		{ID: "c", Suffrage: raft.Voter}, {ID: "a", Suffrage: raft.Voter},
		{ID: "s", Suffrage: raft.Nonvoter}, {ID: "b", Suffrage: raft.Voter},
	}}
	for id, want := range map[raft.ServerID]time.Duration{
		"a": hb, "b": hb + 50*time.Millisecond, "c": hb + 100*time.Millisecond, "s": hb, "unknown": hb,
	} {
		if got := patience(hb, id, conf); got != want {
			t.Errorf("patience of %s = %v, want %v", id, got, want)
		}
	}
}

// TestLoneWriteReachesFollowers: with a commit timeout far longer than the test, a
// follower learns that a lone write is committed (and applies it) only because the leader
// spreads the commit index once its writes pause (batcher.spreadIfQuiet); before, an idle
// leader's commit messages did it, every 200-400 ms, and were most of a follower's
// AppendEntries.
func TestLoneWriteReachesFollowers(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Timings = testTimings()
		cfg.Timings.Commit = time.Minute
	})
	c.exec(stmt("CREATE TABLE t (x INTEGER)"))
	c.waitConverged()
	c.exec(stmt("INSERT INTO t VALUES (1)"))
	l := c.leader()
	want := l.store.AppliedIndex()
	wait.For(t, 5*time.Second, "every follower applying the lone write", func() error {
		for _, nd := range c.running() {
			if got := nd.store.AppliedIndex(); got < want {
				return fmt.Errorf("%s applied %d, the leader %d", nd.id, got, want)
			}
		}
		return nil
	})
}

// TestLeaderHeartbeatsFollowTheRoundTrip runs the default timings with the members 50 ms
// apart each way (100 ms RTT): raft's leader sends each heartbeat once the previous one is
// answered, so the gap between them grows by the round trip. The leader shortens its
// heartbeat interval by it (its stretched heartbeat timeout by 5 round trips): 2.4 s on a
// LAN, ~1.9 s here.
func TestLeaderHeartbeatsFollowTheRoundTrip(t *testing.T) {
	c := newDelayedCluster(t, DefaultTimings(), 50*time.Millisecond)
	d := DefaultTimings()
	lan := time.Duration(d.LeaderStretch) * d.Heartbeat
	l := c.leader()
	wait.For(t, 10*time.Second, "the leader's heartbeat timeout shortened by 5 round trips", func() error {
		got := l.store.raft.ReloadableConfig().HeartbeatTimeout
		if got > lan-5*80*time.Millisecond || got < lan-5*200*time.Millisecond {
			return fmt.Errorf("%s runs raft with heartbeat timeout %v; want about %v - 5 × 100 ms", l.id, got, lan)
		}
		return nil
	})
}
