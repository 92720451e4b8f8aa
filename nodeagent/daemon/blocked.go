package daemon

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/version"
)

// versionGate computes, from the database's version (cluster) and the members' versions,
// whether this member must refuse the client API: "upgrade required" while it is older than
// the database, BLOCKED while it is newer than some member that is not itself behind the
// database (such a member has to be upgraded anyway and holds nobody back). A member older
// than another member but not than the database keeps serving: it is the one not yet upgraded.
func versionGate(self string, mine, cluster version.Info, members []heartbeatMember) (blocked bool, msg string) {
	if behind(mine, cluster) {
		return true, fmt.Sprintf("upgrade required: this member runs schema %d API %d but the cluster's database is at schema %d API %d",
			mine.Schema, mine.APILevel, cluster.Schema, cluster.APILevel)
	}
	var older []string
	for _, m := range members {
		if m.Name == self || m.Version == (version.Info{}) || behind(m.Version, cluster) {
			continue
		}
		if version.Compare(mine, m.Version) > 0 {
			older = append(older, m.Name)
		}
	}
	if len(older) > 0 {
		return true, "this member is blocked: waiting for " + strings.Join(older, ", ") + " to be upgraded"
	}
	return false, ""
}

// behind reports whether a member running v is older than the database (cluster); an
// unknown database version (zero) holds nobody behind.
func behind(v, cluster version.Info) bool {
	return cluster.Schema > 0 && version.Compare(v, cluster) < 0
}

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
	_, msg := versionGate(d.memberName(), d.version, cluster, members)
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
	if strings.HasPrefix(r.URL.Path, "/internal/") || c.member && !c.unix {
		return nil // cluster traffic, including requests other members forward here
	}
	if msg := d.blockedMessage(); msg != "" {
		return api.Errorf(http.StatusServiceUnavailable, "%s", msg)
	}
	return nil
}
