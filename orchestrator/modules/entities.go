package modules

import (
	"context"
	"fmt"
	"slices"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// entitySpec is a declared pool or network.
type entitySpec struct {
	common
	typ     string                       // driver or network type
	global  map[string]string            // config
	members map[string]map[string]string // node-specific keys per member
}

// entityState is what the cluster has: nil when absent.
type entityState struct {
	status    string
	typ       string
	config    map[string]string
	locations []string
}

// entityAPI are the calls of pools or networks.
type entityAPI struct {
	kind   string
	define func(ctx context.Context, cl *api.Client, s entitySpec, member string) error
	create func(ctx context.Context, cl *api.Client, s entitySpec) error
	delete func(ctx context.Context, cl *api.Client, name string) error
}

// entitySteps brings a pool or network to the declared state: define it on each member
// not yet defined, then create it; delete it when absent is declared.
func entitySteps(e entityAPI, s entitySpec, cur *entityState, members []string) ([]step, error) {
	switch {
	case s.state == "absent" && cur == nil:
		return nil, nil
	case s.state == "absent":
		return []step{{"delete " + e.kind + " " + s.name, func(ctx context.Context, cl *api.Client) error { return e.delete(ctx, cl, s.name) }}}, nil
	case cur != nil && cur.status == api.StatusCreated:
		if cur.typ != s.typ {
			return nil, fmt.Errorf("%w: it is %q, not %q", ErrDiffers, cur.typ, s.typ)
		}
		if k := diffKey(s.global, cur.config); k != "" {
			return nil, fmt.Errorf("%w: key %q is %q, declared %q", ErrDiffers, k, cur.config[k], s.global[k])
		}
		return nil, nil
	}
	var steps []step
	for m := range s.members {
		if !slices.Contains(members, m) {
			return nil, fmt.Errorf("members: %q is not a member of the cluster", m)
		}
	}
	if len(members) > 1 {
		for _, m := range members {
			if cur != nil && slices.Contains(cur.locations, m) && len(s.members[m]) == 0 {
				continue
			}
			steps = append(steps, step{fmt.Sprintf("define %s %s on %s", e.kind, s.name, m), func(ctx context.Context, cl *api.Client) error {
				return e.define(ctx, cl, s, m)
			}})
		}
	}
	steps = append(steps, step{fmt.Sprintf("create %s %s", e.kind, s.name), func(ctx context.Context, cl *api.Client) error {
		return e.create(ctx, cl, s)
	}})
	return steps, nil
}

// withMembersConfig is the create config of a one-member cluster: its node-specific keys
// go with the global ones.
func withMembersConfig(s entitySpec) map[string]string {
	cfg := map[string]string{}
	for k, v := range s.global {
		cfg[k] = v
	}
	if len(s.members) == 1 {
		for _, mc := range s.members {
			for k, v := range mc {
				cfg[k] = v
			}
		}
	}
	return cfg
}

// createConfig is the config of the cluster-wide create: the global keys, or on a
// one-member cluster those with the member's own (withMembersConfig).
func createConfig(ctx context.Context, cl *api.Client, s entitySpec) map[string]string {
	if ms, err := cl.Members(ctx); err == nil && len(ms) == 1 {
		return withMembersConfig(s)
	}
	return s.global
}

var poolAPI = entityAPI{
	kind: "storage pool",
	define: func(ctx context.Context, cl *api.Client, s entitySpec, m string) error {
		return cl.CreateStoragePool(ctx, api.StoragePool{Name: s.name, Driver: s.typ, Config: s.members[m]}, m)
	},
	create: func(ctx context.Context, cl *api.Client, s entitySpec) error {
		return cl.CreateStoragePool(ctx, api.StoragePool{Name: s.name, Driver: s.typ, Config: createConfig(ctx, cl, s)}, "")
	},
	delete: func(ctx context.Context, cl *api.Client, name string) error { return cl.DeleteStoragePool(ctx, name) },
}

var networkAPI = entityAPI{
	kind: "network",
	define: func(ctx context.Context, cl *api.Client, s entitySpec, m string) error {
		return cl.CreateNetwork(ctx, api.Network{Name: s.name, Type: s.typ, Config: s.members[m]}, m)
	},
	create: func(ctx context.Context, cl *api.Client, s entitySpec) error {
		return cl.CreateNetwork(ctx, api.Network{Name: s.name, Type: s.typ, Config: createConfig(ctx, cl, s)}, "")
	},
	delete: func(ctx context.Context, cl *api.Client, name string) error { return cl.DeleteNetwork(ctx, name) },
}

func entityArgs(a playbooks.Args, typeArg, typeDef string) (entitySpec, error) {
	var s entitySpec
	var err error
	if s.common, err = commonArgs(a); err != nil {
		return s, err
	}
	if s.typ, err = a.String(typeArg, typeDef); err != nil {
		return s, err
	}
	if s.typ == "" && s.state == "present" {
		return s, fmt.Errorf("%s: required unless state is absent", typeArg)
	}
	if s.global, err = stringMap(a, "config"); err != nil {
		return s, err
	}
	s.members, err = memberMaps(a)
	return s, err
}

// storagePool is the storage_pool module.
func (d Deps) storagePool(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	s, err := entityArgs(t.Args, "driver", "")
	if err != nil {
		return playbooks.Result{}, err
	}
	return d.entity(ctx, t, poolAPI, s, func(cl *api.Client) (*entityState, error) {
		p, err := cl.StoragePool(ctx, s.name, "")
		if err != nil {
			return nil, err
		}
		return &entityState{status: p.Status, typ: p.Driver, config: p.Config, locations: p.Locations}, nil
	})
}

// network is the network module.
func (d Deps) network(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	s, err := entityArgs(t.Args, "type", "bridge")
	if err != nil {
		return playbooks.Result{}, err
	}
	return d.entity(ctx, t, networkAPI, s, func(cl *api.Client) (*entityState, error) {
		n, err := cl.NetworkByName(ctx, s.name, "")
		if err != nil {
			return nil, err
		}
		return &entityState{status: n.Status, typ: n.Type, config: n.Config, locations: n.Locations}, nil
	})
}

func (d Deps) entity(ctx context.Context, t *playbooks.TaskContext, e entityAPI, s entitySpec, get func(*api.Client) (*entityState, error)) (playbooks.Result, error) {
	cl, err := d.apiClient(s.via, s.fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	defer cl.Close()
	cur, err := get(cl)
	if err != nil && !isNotFound(err) {
		return playbooks.Result{}, fmt.Errorf("%s %s: %w", e.kind, s.name, err)
	}
	ms, err := cl.Members(ctx)
	if err != nil {
		return playbooks.Result{}, err
	}
	steps, err := entitySteps(e, s, cur, memberNames(ms))
	if err != nil {
		return playbooks.Result{}, fmt.Errorf("%s %s: %w", e.kind, s.name, err)
	}
	return run(ctx, t, cl, e.kind, s.name, steps)
}
