package upgrade

import (
	"fmt"
	"strings"

	"orch/nodeagent/version"
)

// Member is a member's name and the version it runs (zero when unknown).
type Member struct {
	Name    string
	Version version.Info
}

// Gate computes, from the database's version (cluster) and the members' versions,
// whether this member must refuse the client API: "upgrade required" while it is older than
// the database, BLOCKED while it is newer than some member that is not itself behind the
// database (such a member has to be upgraded anyway and holds nobody back). A member older
// than another member but not than the database keeps serving: it is the one not yet upgraded.
func Gate(self string, mine, cluster version.Info, members []Member) (blocked bool, msg string) {
	if Behind(mine, cluster) {
		return true, fmt.Sprintf("upgrade required: this member runs schema %d API %d but the cluster's database is at schema %d API %d",
			mine.Schema, mine.APILevel, cluster.Schema, cluster.APILevel)
	}
	var older []string
	for _, m := range members {
		if m.Name == self || m.Version == (version.Info{}) || Behind(m.Version, cluster) {
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

// Behind reports whether a member running v is older than the database (cluster); an
// unknown database version (zero) holds nobody behind.
func Behind(v, cluster version.Info) bool {
	return cluster.Schema > 0 && version.Compare(v, cluster) < 0
}
