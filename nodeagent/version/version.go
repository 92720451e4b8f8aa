// Package version holds what every agent carries to the cluster: its release version, the
// schema version of the global database it speaks and its API extension level.
//
// The schema version is the number of schema updates compiled in (schema.Latest()): test
// builds with the schemav2 build tag carry one more update and so speak schema 2. The API
// level and the release version are set with -ldflags "-X orch/nodeagent/version.APILevel=2
// -X orch/nodeagent/version.Version=..." . There is no runtime switch.
package version

import (
	"strconv"

	"orch/nodeagent/api"
	"orch/nodeagent/schema"
)

// Values set at build time (strings so that -ldflags -X can set them).
var (
	Version  = "0.1.0"
	APILevel = "1"
)

// Info is the version triple of one agent: the shared definition in the API package,
// which orch orders agents by too.
type Info = api.AgentVersion

// Current returns this binary's version triple.
func Current() Info {
	a, _ := strconv.Atoi(APILevel)
	return Info{Version: Version, Schema: schema.Latest(), APILevel: a}
}

// Compare orders two agents: -1 if a is older than b, 1 if newer, 0 if the same schema and
// API (api.CompareVersions).
func Compare(a, b Info) int { return api.CompareVersions(a, b) }

// Min returns the older of a and b (a when they compare equal; api.MinVersion).
func Min(a, b Info) Info { return api.MinVersion(a, b) }

// Extensions lists the API extensions of this build's level.
func Extensions(level int) []string {
	base := []string{"clustering", "clustering_join_token", "clustering_roles", "etag_config"}
	for i := 2; i <= level; i++ {
		base = append(base, "api_level_"+strconv.Itoa(i))
	}
	return base
}
