package store

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Timings are the raft timers and snapshot policy.
type Timings struct {
	// Heartbeat is raft's HeartbeatTimeout: a follower that hears nothing from
	// the leader for a random time in [Heartbeat, 2*Heartbeat) starts an
	// election. The leader sends heartbeats every ~Heartbeat/10.
	Heartbeat time.Duration
	// Election is raft's ElectionTimeout: how long a candidate waits for votes
	// (randomised in [Election, 2*Election)) before trying again. Must be >= Heartbeat.
	Election time.Duration
	// LeaderLease is how long a leader keeps leading without hearing from a
	// quorum before it steps down. Must be <= Heartbeat.
	LeaderLease time.Duration
	// Commit is raft's CommitTimeout: the longest an idle leader waits before
	// telling followers a new commit index (bounds follower staleness when idle).
	Commit time.Duration
	// SnapshotThreshold is how many new log entries trigger a snapshot.
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks SnapshotThreshold.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries are kept in the log after a snapshot so
	// that a slightly lagging follower catches up without a full snapshot.
	TrailingLogs uint64
	// LeaderStretch multiplies the heartbeat timeout this member runs raft with
	// while it leads (heartbeats.go): the leader then sends each follower a
	// heartbeat every [LeaderStretch*Heartbeat/10, LeaderStretch*Heartbeat/5),
	// while followers keep Heartbeat as the silence that starts an election.
	// 0 or 1: raft's own interval, Heartbeat/10. At most 4, so that two
	// heartbeats are never further apart than Heartbeat.
	LeaderStretch int
}

// DefaultTimings gives leader failover well under 1.5 s on loopback or a LAN
// while tolerating a loaded 2-core machine, and up to ~100 ms of round trip
// between members (BenchmarkFailover and make bench-scale's WAN rows measure
// it; numbers in DESIGN.md):
//
//   - Heartbeat 800ms (400ms until issue 19's idle target): how long a follower
//     lets a SILENT leader (frozen, cut off, its host lost without closing
//     anything) be silent before it doubts it (plus a step of 100ms per rank
//     among the voters: heartbeats.go's patience); the leader contacts each
//     follower every 240-480ms (LeaderStretch 3), so a heartbeat must be
//     delayed by 320ms or more (GC pause, fsync stall, CPU starvation, a slow
//     link) before a follower doubts a live leader. A leader whose process
//     ENDS (kill -9, a crash) is not waited for: its connections close, the
//     followers find its port refusing and stand at once (leadergone.go;
//     tens of milliseconds). With that, the heartbeat timeout only bounds
//     silent failures, and the heartbeats it needs — the leader must reach a
//     quorum within its lease, so their interval is tied to it — were most
//     of an idle member's CPU: 400ms (heartbeats every 120-240ms) cost a
//     follower ~130 ms of CPU per idle minute, 800ms ~75 (perf stat, same
//     cluster, keys changed live); a silent leader is replaced in ~1-1.2 s
//     instead of ~0.6. hashicorp/raft alone re-arms the follower timer at a
//     random point in [timeout, 2*timeout) and only acts if the leader was
//     silent for the timeout; the contact timer (every AppendEntries received
//     pushes it back; heartbeats.go) has raft check at the follower's
//     patience instead.
//   - Election 800ms: only matters when a vote splits (rare with two survivors,
//     randomised timers and ranked patience); a retry then costs 0.8-1.6 s
//     more. Raft requires Election >= Heartbeat, so this is the smallest
//     allowed value.
//   - LeaderLease 790ms: an isolated leader steps down after 0.79-1.6 s without
//     a quorum, about when the others elect a new one, so two nodes do not
//     both believe they lead for long; raft requires Lease <= Heartbeat, and
//     the 10ms under it let Bootstrap trigger the first election at once
//     (electNow). Linearizable reads never rely on the lease (read.go).
//   - Commit 2s: raft sends each follower an AppendEntries every
//     [Commit, 2*Commit) when idle, only so that it learns the commit index of
//     the last write (writes in flight carry it anyway, and heartbeats keep
//     followers from starting elections, so failover does not depend on it).
//     At 20ms those RPCs (TLS, a log read, msgpack) were most of an idle
//     cluster's CPU: at 250ms the leader's idle CPU fell from 2.7-3.1 s per
//     minute to 1.2 s, a follower's from 0.9 s to 0.55 s (integration/cluster
//     BenchmarkIdleCPU). At 200ms they were still 3.3 of a follower's 7.5
//     AppendEntries a second. The leader spreads the commit index itself once
//     its writes pause for 20ms (a barrier entry it does not wait for:
//     batcher.spreadIfQuiet), so a follower's replica (DB(), and a
//     follower-side WaitApplied after a leader's ReadIndex) trails a lone write
//     by a round trip, not by up to 2*Commit; an idle cluster pays one barrier
//     per write instead of a message per follower every 200-400ms.
//   - LeaderStretch (4 until Commit went to 2s, 3 since): raft's leader sends
//     heartbeats every [Heartbeat/10, Heartbeat/5) of its own configuration, 40-80ms: they were nearly all of
//     an idle member's CPU (a follower received ~20 AppendEntries a second, the
//     leader sent twice that; each wakes several goroutines and threads, which
//     cost more than the work on this VM: 22 µs per context switch). The
//     leader runs with 4x the heartbeat timeout while it leads (raft reads the
//     interval from the leader's configuration and the election timeout from
//     each follower's): 160-320ms, still 1.25 heartbeats per follower's 400ms
//     at worst, and ~7 AppendEntries a second per follower with the commit
//     messages (200ms then). Two 3-member clusters side by side: follower 250 -> 156 ms of
//     CPU per idle minute, leader 889 -> 444 (the daemon's own timers, which
//     woke every member 6 times a second, went in the same change). The leader
//     lease (390ms) is checked against the same contacts, with the same margin.
//   - LeaderStretch 3 with Commit 2s: the heartbeats alone keep followers and
//     the leader lease convinced (the commit messages, every 200-400ms before,
//     filled gaps between them), so the leader sends them every 120-240ms
//     (240-480ms since the heartbeat timeout is 800ms):
//     160ms of margin under a follower's 400ms (320 under 800), twice what the heartbeats
//     alone had with LeaderStretch 4. Side by side (three 3-member clusters,
//     90 s, the same binary): leader 513 ms of CPU per idle minute with
//     Commit 200ms and LeaderStretch 4, 407 with Commit 2s and LeaderStretch
//     3 (347 with LeaderStretch 4: not taken, 80ms of margin); followers 187
//     -> 163 (147).
//   - SnapshotThreshold 8192 / SnapshotInterval 2m / TrailingLogs 10240: the
//     global database is small (MBs), so a snapshot is cheap, but there is no
//     point in taking one more often than every few thousand writes; 10240
//     trailing entries let a follower that was down for a minute of heavy
//     writes catch up from the log instead of a snapshot.
func DefaultTimings() Timings {
	return Timings{
		Heartbeat:         800 * time.Millisecond,
		Election:          800 * time.Millisecond,
		LeaderLease:       790 * time.Millisecond,
		Commit:            2 * time.Second,
		SnapshotThreshold: 8192,
		SnapshotInterval:  2 * time.Minute,
		TrailingLogs:      10240,
		LeaderStretch:     3,
	}
}

// maxLeaderStretch keeps the leader's longest heartbeat interval (2*stretch/10 of the
// heartbeat timeout) under a follower's heartbeat timeout.
const maxLeaderStretch = 4

// Validate checks the constraints raft imposes and a few sanity bounds; the
// error names the offending field.
func (t Timings) Validate() error {
	switch {
	case t.Heartbeat < 5*time.Millisecond:
		return fmt.Errorf("timings.heartbeat %s: must be at least 5ms: %w", t.Heartbeat, ErrBadArg)
	case t.Election < t.Heartbeat:
		return fmt.Errorf("timings.election %s: must be >= heartbeat %s: %w", t.Election, t.Heartbeat, ErrBadArg)
	case t.LeaderLease < 5*time.Millisecond || t.LeaderLease > t.Heartbeat:
		return fmt.Errorf("timings.leader_lease %s: must be in [5ms, heartbeat %s]: %w", t.LeaderLease, t.Heartbeat, ErrBadArg)
	case t.Commit < time.Millisecond:
		return fmt.Errorf("timings.commit %s: must be at least 1ms: %w", t.Commit, ErrBadArg)
	case t.SnapshotThreshold == 0:
		return fmt.Errorf("timings.snapshot_threshold: must be positive: %w", ErrBadArg)
	case t.SnapshotInterval < 5*time.Millisecond:
		return fmt.Errorf("timings.snapshot_interval %s: must be at least 5ms: %w", t.SnapshotInterval, ErrBadArg)
	case t.LeaderStretch < 0 || t.LeaderStretch > maxLeaderStretch:
		return fmt.Errorf("timings.leader_stretch %d: must be in [0, %d]: %w", t.LeaderStretch, maxLeaderStretch, ErrBadArg)
	}
	return nil
}

// raftConfig turns the timings into a raft configuration for server id.
func (t Timings) raftConfig(id string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.HeartbeatTimeout = t.Heartbeat
	c.ElectionTimeout = t.Election
	c.LeaderLeaseTimeout = t.LeaderLease
	c.CommitTimeout = t.Commit
	c.SnapshotThreshold = t.SnapshotThreshold
	c.SnapshotInterval = t.SnapshotInterval
	c.TrailingLogs = t.TrailingLogs
	c.BatchApplyCh = true
	c.NoSnapshotRestoreOnStart = true
	c.ShutdownOnRemove = false
	c.PreVoteDisabled = false
	return c
}

// SetElectionTimings changes raft's heartbeat and election timeouts while it runs (the
// cluster's cluster.raft_heartbeat_timeout and cluster.raft_election_timeout). Raft fixes
// the leader lease when it starts: a heartbeat timeout below the running lease, or an
// election timeout below the heartbeat timeout, is refused with ErrBadArg. While this
// member leads, raft runs with the heartbeat timeout stretched (LeaderStretch).
func (s *Store) SetElectionTimings(heartbeat, election time.Duration) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if hb, el := s.timers.configured(); hb == heartbeat && el == election {
		return nil
	}
	if heartbeat < s.cfg.Timings.LeaderLease || election < heartbeat {
		return fmt.Errorf("raft timings: heartbeat %v must be at least the running leader lease %v and at most the election timeout %v: %w",
			heartbeat, s.cfg.Timings.LeaderLease, election, ErrBadArg)
	}
	return s.timers.set(heartbeat, election)
}

// ElectionTimings are raft's heartbeat and election timeouts as configured now (a
// leader runs raft with the heartbeat timeout stretched, see LeaderStretch).
func (s *Store) ElectionTimings() (heartbeat, election time.Duration) {
	return s.timers.configured()
}
