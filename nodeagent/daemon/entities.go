package daemon

import (
	"context"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/entity"
	"orch/nodeagent/daemon/instances"
	"orch/nodeagent/store"
)

// The daemon's names for the entity package's preseed and join checks (daemon/entity):
// init and join use them, and a bootstrap preseed's profiles are added here (they are the
// instances domain's).

const (
	entityPool    = entity.PoolEntity
	entityNetwork = entity.NetworkEntity
)

// checkMemberConfig refuses member_config entries that are not node-specific keys.
func checkMemberConfig(mc []api.MemberConfigKey) error { return entity.CheckMemberConfig(mc) }

// preseedStatements records a bootstrap preseed's pools, networks and profiles.
func preseedStatements(p api.Preseed, member string, mc []api.MemberConfigKey) []store.Statement {
	out := entity.PreseedStatements(p, member, mc)
	for _, pr := range p.Profiles {
		out = append(out, instances.ProfileStatements(pr)...)
	}
	return out
}

// memberEntityStatements links a member to every pool and network of the cluster and
// records its node-specific keys.
func memberEntityStatements(p api.Preseed, member string, mc []api.MemberConfigKey) []store.Statement {
	return entity.MemberStatements(p, member, mc)
}

// clusterEntities reads the cluster's pools and networks with their global config.
func (d *Daemon) clusterEntities(ctx context.Context) ([]api.StoragePool, []api.Network, error) {
	return d.ents.Cluster(ctx)
}

// compareEntities refuses a joiner whose pools or networks differ from the cluster's.
func compareEntities(clusterPools []api.StoragePool, clusterNets []api.Network, pools []api.StoragePool, nets []api.Network) error {
	return entity.Compare(clusterPools, clusterNets, pools, nets)
}

func sortedKeys[V any](m map[string]V) []string { return db.SortedKeys(m) }
