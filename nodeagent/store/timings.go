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
}

// DefaultTimings gives leader failover well under 1.5 s on loopback or a LAN
// while tolerating a loaded 2-core machine:
//
//   - Heartbeat 500ms: heartbeats go out every ~50ms, so ten consecutive ones
//     must be lost or delayed (GC pause, fsync stall, CPU starvation) before a
//     follower doubts the leader. A dead leader is detected after 0.5-1.0 s;
//     with PreVote the election itself takes one round trip (ms on a LAN), so
//     failover completes in about 0.5-1.0 s.
//   - Election 500ms: only matters when a vote splits (rare with two survivors
//     and randomised timers); a retry then costs 0.5-1.0 s more. Raft requires
//     Election >= Heartbeat, so this is the smallest allowed value.
//   - LeaderLease 500ms: an isolated leader steps down within 0.5 s, at the
//     same time the others start electing; a shorter lease would make a merely
//     slow leader step down spuriously. Raft requires Lease <= Heartbeat.
//   - Commit 20ms: an idle leader propagates its commit index within 20ms, so
//     a follower's linearizable read (ReadIndex + WaitApplied) waits at most
//     that long; the cost is one small RPC per follower every 20ms when idle.
//   - SnapshotThreshold 8192 / SnapshotInterval 2m / TrailingLogs 10240: the
//     global database is small (MBs), so a snapshot is cheap, but there is no
//     point in taking one more often than every few thousand writes; 10240
//     trailing entries let a follower that was down for a minute of heavy
//     writes catch up from the log instead of a snapshot.
func DefaultTimings() Timings {
	return Timings{
		Heartbeat:         500 * time.Millisecond,
		Election:          500 * time.Millisecond,
		LeaderLease:       500 * time.Millisecond,
		Commit:            20 * time.Millisecond,
		SnapshotThreshold: 8192,
		SnapshotInterval:  2 * time.Minute,
		TrailingLogs:      10240,
	}
}

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
