package entity

import (
	"context"
	"fmt"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/store"
)

// statePending is the state of a pool or network a preseed defined, before this member
// made its part.
const statePending = "Pending"

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
			if api.IsNodeSpecific(PoolEntity, k) {
				add(PoolEntity, sp.Name, k, v)
			}
		}
	}
	for _, n := range p.Networks {
		for k, v := range n.Config {
			if api.IsNodeSpecific(NetworkEntity, k) {
				add(NetworkEntity, n.Name, k, v)
			}
		}
	}
	for _, m := range mc {
		add(m.Entity, m.Name, m.Key, m.Value)
	}
	return out
}

// CheckMemberConfig refuses member_config entries that are not node-specific keys.
func CheckMemberConfig(mc []api.MemberConfigKey) error {
	for i, m := range mc {
		if m.Entity != PoolEntity && m.Entity != NetworkEntity {
			return fmt.Errorf("member_config[%d]: unknown entity %q (storage-pool or network)", i, m.Entity)
		}
		if !api.IsNodeSpecific(m.Entity, m.Key) {
			return fmt.Errorf("member_config[%d]: key %q of %s %q is not node-specific", i, m.Key, m.Entity, m.Name)
		}
	}
	return nil
}

// PreseedStatements record a bootstrap preseed's pools and networks (the daemon adds its
// profiles). Pools and networks are Pending until this member makes its parts.
func PreseedStatements(p api.Preseed, member string, mc []api.MemberConfigKey) []store.Statement {
	var out []store.Statement
	for _, sp := range p.StoragePools {
		out = append(out, store.Statement{
			SQL:  `INSERT INTO storage_pools(name, driver, description, state) VALUES(?, ?, ?, ?)`,
			Args: []any{sp.Name, sp.Driver, sp.Description, statePending},
		})
		out = append(out, entityConfigStatements("storage_pools_config", "pool_id", "storage_pools", sp.Name, api.GlobalConfig(PoolEntity, sp.Config))...)
	}
	for _, n := range p.Networks {
		out = append(out, store.Statement{
			SQL:  `INSERT INTO networks(name, type, description, state) VALUES(?, ?, ?, ?)`,
			Args: []any{n.Name, n.Type, n.Description, statePending},
		})
		out = append(out, entityConfigStatements("networks_config", "network_id", "networks", n.Name, api.GlobalConfig(NetworkEntity, n.Config))...)
	}
	return append(out, MemberStatements(p, member, mc)...)
}

func entityConfigStatements(table, idCol, parent, name string, cfg map[string]string) []store.Statement {
	var out []store.Statement
	for _, k := range db.SortedKeys(cfg) {
		out = append(out, store.Statement{
			SQL:  `INSERT INTO ` + table + `(` + idCol + `, member_id, key, value) VALUES((SELECT id FROM ` + parent + ` WHERE name = ?), 0, ?, ?)`,
			Args: []any{name, k, cfg[k]},
		})
	}
	return out
}

// MemberStatements links a member to every pool and network of the cluster and
// records its node-specific keys.
func MemberStatements(p api.Preseed, member string, mc []api.MemberConfigKey) []store.Statement {
	specific := memberSpecific(p, mc)
	out := []store.Statement{
		{SQL: `INSERT INTO storage_pools_members(pool_id, member_id, state) SELECT id, (SELECT id FROM members WHERE name = ?), ? FROM storage_pools`, Args: []any{member, statePending}},
		{SQL: `INSERT INTO networks_members(network_id, member_id, state) SELECT id, (SELECT id FROM members WHERE name = ?), ? FROM networks`, Args: []any{member, statePending}},
	}
	for _, id := range db.SortedKeys(specific) {
		entity, name := splitEntity(id)
		table, idCol, parent := "storage_pools_config", "pool_id", "storage_pools"
		if entity == NetworkEntity {
			table, idCol, parent = "networks_config", "network_id", "networks"
		}
		for _, k := range db.SortedKeys(specific[id]) {
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

// Cluster reads the cluster's pools and networks with their global config.
func (s *Service) Cluster(ctx context.Context) (pools []api.StoragePool, networks []api.Network, err error) {
	rows, err := s.db.Query(ctx, `SELECT p.name, p.driver, c.key, c.value FROM storage_pools p
		LEFT JOIN storage_pools_config c ON c.pool_id = p.id AND c.member_id = 0 ORDER BY p.name`)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rows {
		if len(pools) == 0 || pools[len(pools)-1].Name != db.Str(r[0]) {
			pools = append(pools, api.StoragePool{Name: db.Str(r[0]), Driver: db.Str(r[1]), Config: map[string]string{}})
		}
		if r[2] != nil {
			pools[len(pools)-1].Config[db.Str(r[2])] = db.Str(r[3])
		}
	}
	rows, err = s.db.Query(ctx, `SELECT n.name, n.type, c.key, c.value FROM networks n
		LEFT JOIN networks_config c ON c.network_id = n.id AND c.member_id = 0 ORDER BY n.name`)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rows {
		if len(networks) == 0 || networks[len(networks)-1].Name != db.Str(r[0]) {
			networks = append(networks, api.Network{Name: db.Str(r[0]), Type: db.Str(r[1]), Config: map[string]string{}})
		}
		if r[2] != nil {
			networks[len(networks)-1].Config[db.Str(r[2])] = db.Str(r[3])
		}
	}
	return pools, networks, nil
}

// Compare refuses a joiner whose pools or networks differ from the cluster's in
// anything but node-specific keys, naming the entity and the key.
func Compare(clusterPools []api.StoragePool, clusterNets []api.Network, pools []api.StoragePool, nets []api.Network) error {
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
		if k := api.DiffConfig(api.GlobalConfig(PoolEntity, p.Config), c.Config); k != "" {
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
		if k := api.DiffConfig(api.GlobalConfig(NetworkEntity, joinerNetworkConfig(n.Config, c.Config)), c.Config); k != "" {
			return fmt.Errorf("network %q: key %q differs from the cluster's", n.Name, k)
		}
	}
	return nil
}
