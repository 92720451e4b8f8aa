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

// lxdExtensions are the LXD API extensions this agent implements, by LXD's names, each
// with what it promises (LXD's doc/api-extensions.md). LXD's clients switch behaviour on
// them (the lxc client refuses storage, network, list and projects commands without theirs
// and uses /1.0/containers without "instances"), so an extension is listed only when what
// it promises works.
var lxdExtensions = []string{
	"etag_config",                    // ETag and If-Match on GET/PUT/PATCH /1.0 and the objects
	"clustering",                     // /1.0/cluster, /1.0/cluster/members
	"clustering_join_token",          // join tokens from POST /1.0/cluster/members
	"clustering_roles",               // roles of members (database, database-leader, database-standby)
	"clustering_failure_domains",     // failure_domain of members, PUT/PATCH to set it
	"clustering_groups",              // /1.0/cluster/groups, groups of members, launch --target @GROUP
	"clustering_evacuation",          // POST /1.0/cluster/members/NAME/state: evacuate (stop its instances, place nothing there) and restore
	"cluster_internal_copy",          // a copy between members of the cluster is a create with a source of type copy (lxc copy c1 c2 --target)
	"clustering_edit_roles",          // PUT/PATCH of members with roles (the database roles are the cluster's to assign, as in LXD: sent back unchanged, other roles refused)
	"storage",                        // /1.0/storage-pools and custom volumes, ?target=
	"network",                        // /1.0/networks, ?target=
	"resources",                      // GET /1.0/resources (CPUs, memory; no device inventory) and /1.0/storage-pools/NAME/resources (space, inodes)
	"resources_v2",                   // the resources API's v2 shape (lxc info --resources)
	"network_state",                  // GET /1.0/networks/NAME/state: an interface's addresses, counters, bridge (lxc network info)
	"instances",                      // /1.0/instances (and /1.0/containers as its alias)
	"container_full",                 // GET /1.0/instances?recursion=2: instances with state
	"instance_get_full",              // GET /1.0/instances/NAME?recursion=1: the instance with its state
	"instance_all_projects",          // GET /1.0/instances?all-projects=true: every project's (there is one, default)
	"api_filtering",                  // ?filter= on GET /1.0/instances and /1.0/images
	"projects",                       // /1.0/projects: the default project only
	"certificate_update",             // PUT/PATCH /1.0/certificates/FINGERPRINT
	"directory_manipulation",         // files API: directories (X-LXD-type: directory)
	"file_delete",                    // DELETE /1.0/instances/NAME/files?path=
	"file_append",                    // X-LXD-write: append on file push
	"operation_description",          // description of operations (/1.0/operations)
	"event_lifecycle",                // lifecycle events on /1.0/events
	"event_location",                 // location of events (the member that sent them)
	"cluster_join_token_expiry",      // join tokens expire (cluster.join_token_expiry)
	"certificate_token",              // POST /1.0/certificates with token: a certificate-add token operation
	"metrics",                        // GET /1.0/metrics (instances' and the daemon's), certificates of type metrics
	"metrics_authentication",         // core.metrics_authentication=false opens /1.0/metrics to anyone
	"container_exec_signal_handling", // exec's control websocket passes signals on to the command
	"container_exec_user_group_cwd",  // exec as a user and group of the container (user, group), in a directory (cwd)
}

// Extensions lists the API extensions of this build's level: LXD's that are implemented,
// then api_level_N for each level above 1.
func Extensions(level int) []string {
	base := append([]string(nil), lxdExtensions...)
	for i := 2; i <= level; i++ {
		base = append(base, "api_level_"+strconv.Itoa(i))
	}
	return base
}
