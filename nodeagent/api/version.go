package api

import "cmp"

// AgentVersion is the version triple every agent carries to the cluster, as
// `nodeagent version --format json` prints it and heartbeats and joins send it: its
// release version, the schema version of the global database it speaks and its API
// extension level. Both orch and the agent order agents by it (CompareVersions).
type AgentVersion struct {
	Version  string `json:"version"`
	Schema   int    `json:"schema_version"`
	APILevel int    `json:"api_level"`
}

// CompareVersions orders two agents: -1 if a is older than b, 1 if newer, 0 if they speak
// the same schema and API (whatever their release versions).
func CompareVersions(a, b AgentVersion) int {
	switch {
	case a.Schema != b.Schema:
		return cmp.Compare(a.Schema, b.Schema)
	case a.APILevel != b.APILevel:
		return cmp.Compare(a.APILevel, b.APILevel)
	}
	return 0
}

// MinVersion returns the older of a and b (a when they compare equal).
func MinVersion(a, b AgentVersion) AgentVersion {
	if CompareVersions(b, a) < 0 {
		return b
	}
	return a
}

// AgentVersion is the version triple the member reports.
func (m ClusterMember) AgentVersion() AgentVersion {
	return AgentVersion{Version: m.Version, Schema: m.SchemaVersion, APILevel: m.APILevel}
}
