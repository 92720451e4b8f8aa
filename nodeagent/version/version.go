// Package version holds what every agent carries to the cluster: its release version, the
// schema version of the global database it speaks and its API extension level. Test builds
// set other values with -ldflags "-X orch/nodeagent/version.Schema=2 -X ...APILevel=2"; there
// is no runtime switch.
package version

import "strconv"

// Values set at build time (strings so that -ldflags -X can set them).
var (
	Version  = "0.1.0"
	Schema   = "1"
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
	s, _ := strconv.Atoi(Schema)
	a, _ := strconv.Atoi(APILevel)
	return Info{Version: Version, Schema: s, APILevel: a}
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

// Extensions lists the API extensions of this build's level.
func Extensions(level int) []string {
	base := []string{"clustering", "clustering_join_token", "clustering_roles", "etag_config"}
	for i := 2; i <= level; i++ {
		base = append(base, "api_level_"+strconv.Itoa(i))
	}
	return base
}
