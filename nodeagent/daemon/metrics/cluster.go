package metrics

import (
	"runtime"
	"time"

	"orch/nodeagent/api"
)

// Raft is this member's place in the cluster database.
type Raft struct {
	// Role is database-leader, database, database-standby or spare.
	Role string
	// AppliedIndex is the last entry applied to this member's replica, CommitIndex the
	// last entry it knows committed, LastLogIndex the last entry of its raft log.
	AppliedIndex, CommitIndex, LastLogIndex uint64
}

// MemberHealth is a member as the cluster database records it.
type MemberHealth struct {
	Name string
	// Status is api.StatusOnline or api.StatusOffline (the heartbeat's age against
	// cluster.offline_threshold).
	Status string
	// HeartbeatAge is how old its last heartbeat is, by the leader's clock.
	HeartbeatAge time.Duration
}

// raftRoles are the roles orch_raft_role reports, one sample each (1 for this member's).
var raftRoles = []string{"database-leader", "database", "database-standby", "spare"}

// memberStatuses are the statuses orch_members counts, each always present.
var memberStatuses = []string{api.StatusOnline, api.StatusOffline}

// addRaft adds the cluster database gauges of this member.
func addRaft(s *Set, r Raft) {
	for _, role := range raftRoles {
		v := 0.0
		if role == r.Role {
			v = 1
		}
		s.Add("orch_raft_role", "This member's role in the cluster database (1 for its role).", Gauge, Labels{"role": role}, v)
	}
	s.Add("orch_raft_applied_index", "The last raft log entry applied to this member's replica.", Gauge, nil, float64(r.AppliedIndex))
	s.Add("orch_raft_commit_index", "The last raft log entry this member knows committed.", Gauge, nil, float64(r.CommitIndex))
	s.Add("orch_raft_last_log_index", "The last entry of this member's raft log.", Gauge, nil, float64(r.LastLogIndex))
}

// addMembers adds every member's heartbeat age and the count of members per status.
func addMembers(s *Set, ms []MemberHealth) {
	count := map[string]int{}
	for _, m := range ms {
		s.Add("orch_member_heartbeat_age_seconds", "How old the member's last heartbeat is (the leader's clock).", Gauge,
			Labels{"member": m.Name}, m.HeartbeatAge.Seconds())
		count[m.Status]++
	}
	for _, st := range memberStatuses {
		s.Add("orch_members", "The number of cluster members per status.", Gauge, Labels{"status": st}, float64(count[st]))
	}
}

// addInternal adds the daemon's own figures LXD serves too.
func addInternal(s *Set, uptime time.Duration) {
	s.Add("lxd_uptime_seconds", "The daemon uptime in seconds.", Gauge, nil, uptime.Seconds())
	s.Add("lxd_go_goroutines", "Number of goroutines that currently exist.", Gauge, nil, float64(runtime.NumGoroutine()))
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.Add("lxd_go_alloc_bytes", "Number of bytes allocated and still in use.", Gauge, nil, float64(m.Alloc))
}
