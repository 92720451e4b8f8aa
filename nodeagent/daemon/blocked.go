package daemon

import (
	"net/http"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/version"
)

// versionGate computes, from the members' versions, whether this member must refuse the
// client API: BLOCKED while it is newer than some member, "upgrade required" while older.
func versionGate(self string, mine version.Info, members []heartbeatMember) (blocked bool, msg string) {
	var older, newer []string
	for _, m := range members {
		if m.Name == self || m.Version == (version.Info{}) {
			continue
		}
		switch version.Compare(mine, m.Version) {
		case 1:
			older = append(older, m.Name)
		case -1:
			newer = append(newer, m.Name)
		}
	}
	switch {
	case len(newer) > 0:
		return true, "upgrade required: members " + strings.Join(newer, ", ") + " run a newer version"
	case len(older) > 0:
		return true, "this member is blocked: waiting for " + strings.Join(older, ", ") + " to be upgraded"
	}
	return false, ""
}

// blockedMessage returns why this member refuses the client API, or "".
func (d *Daemon) blockedMessage() string {
	d.health.mu.Lock()
	members := d.health.members
	d.health.mu.Unlock()
	_, msg := versionGate(d.memberName(), d.version, members)
	return msg
}

// checkBlocked refuses client API calls on a blocked member, except status (GET /1.0 and
// the member list, which says why it is blocked) and the internal cluster traffic.
func (d *Daemon) checkBlocked(r *http.Request, c caller, need access) error {
	if need == member || need == local || r.Method == http.MethodGet && (r.URL.Path == "/1.0" || r.URL.Path == "/1.0/cluster/members") {
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
