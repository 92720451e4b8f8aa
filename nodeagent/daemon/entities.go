package daemon

import (
	"context"
	"fmt"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/entity"
	"orch/nodeagent/daemon/instances"
	"orch/nodeagent/store"
)

const (
	entityPool    = entity.PoolEntity
	entityNetwork = entity.NetworkEntity
	statePending  = "Pending"
)

// memberSpecific collects node-specific keys per entity ("storage-pool/NAME") from a
// preseed's member_config and from node-specific keys written directly in its pools and
// networks.
func memberSpecific(p api.Preseed, mc []api.MemberConfigKey) map[string]map[string]string {
	out := map[string]map[string]string{}
	add := func(entity, name, key, value string) {
		id := entity + "/" + name
		if out[id] == nil {
			out[id] = map[string]string{}
		}
		out[id][key] = value
	}
	for _, sp := range p.StoragePools {
		for k, v := range sp.Config {
			if api.IsNodeSpecific(entityPool, k) {
				add(entityPool, sp.Name, k, v)
			}
		}
	}
	for _, n := range p.Networks {
		for k, v := range n.Config {
			if api.IsNodeSpecific(entityNetwork, k) {
				add(entityNetwork, n.Name, k, v)
			}
		}
	}
	for _, m := range mc {
		add(m.Entity, m.Name, m.Key, m.Value)
	}
	return out
}

// checkMemberConfig refuses member_config entries that are not node-specific keys.
func checkMemberConfig(mc []api.MemberConfigKey) error {
	for i, m := range mc {
		if m.Entity != entityPool && m.Entity != entityNetwork {
			return fmt.Errorf("member_config[%d]: unknown entity %q (storage-pool or network)", i, m.Entity)
		}
		if !api.IsNodeSpecific(m.Entity, m.Key) {
			return fmt.Errorf("member_config[%d]: key %q of %s %q is not node-specific", i, m.Key, m.Entity, m.Name)
		}
	}
	return nil
}

// preseedStatements records a bootstrap preseed's pools, networks and profiles. Pools and
// networks are Pending until the storage and network code instantiates them.
func preseedStatements(p api.Preseed, member string, mc []api.MemberConfigKey) []store.Statement {
	var out []store.Statement
	for _, sp := range p.StoragePools {
		out = append(out, store.Statement{
			SQL:  `INSERT INTO storage_pools(name, driver, description, state) VALUES(?, ?, ?, ?)`,
			Args: []any{sp.Name, sp.Driver, sp.Description, statePending},
		})
		out = append(out, entityConfigStatements("storage_pools_config", "pool_id", "storage_pools", sp.Name, api.GlobalConfig(entityPool, sp.Config))...)
	}
	for _, n := range p.Networks {
		out = append(out, store.Statement{
			SQL:  `INSERT INTO networks(name, type, description, state) VALUES(?, ?, ?, ?)`,
			Args: []any{n.Name, n.Type, n.Description, statePending},
		})
		out = append(out, entityConfigStatements("networks_config", "network_id", "networks", n.Name, api.GlobalConfig(entityNetwork, n.Config))...)
	}
	out = append(out, memberEntityStatements(p, member, mc)...)
	for _, pr := range p.Profiles {
		out = append(out, instances.ProfileStatements(pr)...)
	}
	return out
}

func entityConfigStatements(table, idCol, parent, name string, cfg map[string]string) []store.Statement {
	var out []store.Statement
	for _, k := range sortedKeys(cfg) {
		out = append(out, store.Statement{
			SQL:  `INSERT INTO ` + table + `(` + idCol + `, member_id, key, value) VALUES((SELECT id FROM ` + parent + ` WHERE name = ?), 0, ?, ?)`,
			Args: []any{name, k, cfg[k]},
		})
	}
	return out
}

// memberEntityStatements links a member to every pool and network of the cluster and
// records its node-specific keys.
func memberEntityStatements(p api.Preseed, member string, mc []api.MemberConfigKey) []store.Statement {
	specific := memberSpecific(p, mc)
	out := []store.Statement{
		{SQL: `INSERT INTO storage_pools_members(pool_id, member_id, state) SELECT id, (SELECT id FROM members WHERE name = ?), ? FROM storage_pools`, Args: []any{member, statePending}},
		{SQL: `INSERT INTO networks_members(network_id, member_id, state) SELECT id, (SELECT id FROM members WHERE name = ?), ? FROM networks`, Args: []any{member, statePending}},
	}
	for _, id := range sortedKeys(specific) {
		entity, name := splitEntity(id)
		table, idCol, parent := "storage_pools_config", "pool_id", "storage_pools"
		if entity == entityNetwork {
			table, idCol, parent = "networks_config", "network_id", "networks"
		}
		for _, k := range sortedKeys(specific[id]) {
			out = append(out, store.Statement{
				SQL: `INSERT INTO ` + table + `(` + idCol + `, member_id, key, value)
				      SELECT p.id, m.id, ?, ? FROM ` + parent + ` p, members m WHERE p.name = ? AND m.name = ?`,
				Args: []any{k, specific[id][k], name, member},
			})
		}
	}
	return out
}

func splitEntity(id string) (entity, name string) {
	for i := 0; i < len(id); i++ {
		if id[i] == '/' {
			return id[:i], id[i+1:]
		}
	}
	return id, ""
}

func sortedKeys[V any](m map[string]V) []string { return db.SortedKeys(m) }

// clusterEntities reads the cluster's pools and networks with their global config.
func (d *Daemon) clusterEntities(ctx context.Context) (pools []api.StoragePool, networks []api.Network, err error) {
	rows, err := d.query(ctx, `SELECT p.name, p.driver, c.key, c.value FROM storage_pools p
		LEFT JOIN storage_pools_config c ON c.pool_id = p.id AND c.member_id = 0 ORDER BY p.name`)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rows {
		if len(pools) == 0 || pools[len(pools)-1].Name != str(r[0]) {
			pools = append(pools, api.StoragePool{Name: str(r[0]), Driver: str(r[1]), Config: map[string]string{}})
		}
		if r[2] != nil {
			pools[len(pools)-1].Config[str(r[2])] = str(r[3])
		}
	}
	rows, err = d.query(ctx, `SELECT n.name, n.type, c.key, c.value FROM networks n
		LEFT JOIN networks_config c ON c.network_id = n.id AND c.member_id = 0 ORDER BY n.name`)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rows {
		if len(networks) == 0 || networks[len(networks)-1].Name != str(r[0]) {
			networks = append(networks, api.Network{Name: str(r[0]), Type: str(r[1]), Config: map[string]string{}})
		}
		if r[2] != nil {
			networks[len(networks)-1].Config[str(r[2])] = str(r[3])
		}
	}
	return pools, networks, nil
}

// compareEntities refuses a joiner whose pools or networks differ from the cluster's in
// anything but node-specific keys, naming the entity and the key.
func compareEntities(clusterPools []api.StoragePool, clusterNets []api.Network, pools []api.StoragePool, nets []api.Network) error {
	cp := map[string]api.StoragePool{}
	for _, p := range clusterPools {
		cp[p.Name] = p
	}
	for _, p := range pools {
		c, ok := cp[p.Name]
		if !ok {
			return fmt.Errorf("storage pool %q does not exist in the cluster", p.Name)
		}
		if c.Driver != p.Driver {
			return fmt.Errorf("storage pool %q: driver %q differs from the cluster's %q", p.Name, p.Driver, c.Driver)
		}
		if k := api.DiffConfig(api.GlobalConfig(entityPool, p.Config), c.Config); k != "" {
			return fmt.Errorf("storage pool %q: key %q differs from the cluster's", p.Name, k)
		}
	}
	cn := map[string]api.Network{}
	for _, n := range clusterNets {
		cn[n.Name] = n
	}
	for _, n := range nets {
		c, ok := cn[n.Name]
		if !ok {
			return fmt.Errorf("network %q does not exist in the cluster", n.Name)
		}
		if n.Type != "" && c.Type != n.Type {
			return fmt.Errorf("network %q: type %q differs from the cluster's %q", n.Name, n.Type, c.Type)
		}
		if k := api.DiffConfig(api.GlobalConfig(entityNetwork, entity.JoinerNetworkConfig(n.Config, c.Config)), c.Config); k != "" {
			return fmt.Errorf("network %q: key %q differs from the cluster's", n.Name, k)
		}
	}
	return nil
}
