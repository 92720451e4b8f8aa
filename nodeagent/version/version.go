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

	"orch/nodeagent/schema"
)

// Values set at build time (strings so that -ldflags -X can set them).
var (
	Version  = "0.1.0"
	APILevel = "1"
)

// Info is the version triple of one agent.
type Info struct {
	Version  string `json:"version"`
	Schema   int    `json:"schema_version"`
	APILevel int    `json:"api_level"`
}

// Current returns this binary's version triple.
func Current() Info {
	a, _ := strconv.Atoi(APILevel)
	return Info{Version: Version, Schema: schema.Latest(), APILevel: a}
}

// Compare orders two agents: -1 if a is older than b, 1 if newer, 0 if the same schema and API.
func Compare(a, b Info) int {
	switch {
	case a.Schema != b.Schema:
		if a.Schema < b.Schema {
			return -1
		}
		return 1
	case a.APILevel != b.APILevel:
		if a.APILevel < b.APILevel {
			return -1
		}
		return 1
	}
	return 0
}

// Min returns the older of a and b (a when they compare equal).
func Min(a, b Info) Info {
	if Compare(b, a) < 0 {
		return b
	}
	return a
}

// Extensions lists the API extensions of this build's level.
func Extensions(level int) []string {
	base := []string{"clustering", "clustering_join_token", "clustering_roles", "etag_config"}
	for i := 2; i <= level; i++ {
		base = append(base, "api_level_"+strconv.Itoa(i))
	}
	return base
}
