package daemon

import (
	"context"
	"net/http"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/upgrade"
	"orch/nodeagent/version"
)

// blockedMessage returns why this member refuses the client API, or "". Until the first
// heartbeat (or announce answer) arrives it judges from its own replica, so that a member
// restarted on a newer binary is blocked from its first request.
func (d *Daemon) blockedMessage() string {
	d.health.mu.Lock()
	members, cluster, heard := d.health.members, d.health.cluster, d.health.heard
	d.health.mu.Unlock()
	if !heard {
		var ok bool
		if cluster, members, ok = d.versionsFromReplica(); !ok {
			return ""
		}
	}
	_, msg := upgrade.Gate(d.memberName(), d.version, cluster, gateMembers(members))
	return msg
}

// versionsFromReplica reads the database's version and the members' versions from this
// member's replica; ok is false when it holds none (a spare, or before init).
func (d *Daemon) versionsFromReplica() (cluster version.Info, members []heartbeatMember, ok bool) {
	if d.store() == nil {
		return cluster, nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rows, err := d.membersLocal(ctx)
	if err != nil || len(rows) == 0 {
		return cluster, nil, false
	}
	if cluster, err = d.clusterVersionLocal(ctx); err != nil {
		return cluster, nil, false
	}
	for _, m := range rows {
		members = append(members, heartbeatMember{Name: m.name, Address: m.address, Version: m.ver})
	}
	return cluster, members, true
}

// checkBlocked refuses client API calls on a blocked member, except status (GET /1.0, which
// says why it is blocked) and the internal cluster traffic. The member list is refused too,
// so that `cluster list` on a blocked member prints why and on which members it waits.
func (d *Daemon) checkBlocked(r *http.Request, c caller, need access) error {
	if need == member || need == local || r.Method == http.MethodGet && r.URL.Path == "/1.0" {
		return nil
	}
	if strings.HasPrefix(r.URL.Path, "/internal/") || c.Member && !c.Unix {
		return nil // cluster traffic, including requests other members forward here
	}
	if msg := d.blockedMessage(); msg != "" {
		return api.Errorf(http.StatusServiceUnavailable, "%s", msg)
	}
	return nil
}

// gateMembers are the members' versions as the version gate takes them.
func gateMembers(ms []heartbeatMember) []upgrade.Member {
	out := make([]upgrade.Member, len(ms))
	for i, m := range ms {
		out[i] = upgrade.Member{Name: m.Name, Version: m.Version}
	}
	return out
}

// clusterVersionLocal reads the database's schema version and API level from this
// member's replica.
func (d *Daemon) clusterVersionLocal(ctx context.Context) (version.Info, error) {
	return upgrade.ClusterVersion(ctx, dbAccess{d})
}
