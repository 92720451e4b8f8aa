package entity

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"orch/modules/storage"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// poolKind is the storage pool flavour of the cluster-wide flow.
var poolKind = &entityKind{
	noun: "storage pool", entity: PoolEntity,
	table: "storage_pools", config: "storage_pools_config", members: "storage_pools_members",
	idCol: "pool_id", typeCol: "driver", internal: "/internal/storage/pools",
	create:       func(s *Service, ctx context.Context, req entityRequest) error { return s.createPoolHere(ctx, req) },
	delete:       func(s *Service, ctx context.Context, req entityRequest) error { return s.deletePoolHere(ctx, req) },
	beforeDelete: func(s *Service, ctx context.Context, e *entityRow) error { return s.refuseIfPoolHasVolumes(ctx, e) },
}

// poolDriver is this member's driver for a pool.
func (s *Service) poolDriver(req entityRequest) (storage.Driver, storage.Pool, error) {
	p := storage.Pool{Name: req.Name, AgentDir: s.dir, Config: req.Config}
	drv, err := storage.New(req.Type, p, storage.Options{Logger: s.log.With("component", "storage")})
	return drv, p, err
}

func (s *Service) createPoolHere(ctx context.Context, req entityRequest) error {
	drv, _, err := s.poolDriver(req)
	if err != nil {
		return err
	}
	if err := drv.Create(ctx); err != nil {
		return err
	}
	s.log.Info("storage pool ready", "pool", req.Name, "driver", req.Type)
	return nil
}

func (s *Service) deletePoolHere(ctx context.Context, req entityRequest) error {
	drv, _, err := s.poolDriver(req)
	if err != nil {
		return err
	}
	if err := drv.Delete(ctx); err != nil {
		return err
	}
	s.log.Info("storage pool deleted", "pool", req.Name)
	return nil
}

func (s *Service) postStoragePool(w http.ResponseWriter, r *http.Request) error {
	var req api.StoragePool
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if err := storage.CheckName("pool", req.Name); err != nil {
		return rest.BadRequest("%v", err)
	}
	if req.Driver != "" && !slices.Contains(storage.Drivers, req.Driver) {
		return rest.BadRequest("storage pool %q: unknown driver %q (one of %s)", req.Name, req.Driver, strings.Join(storage.Drivers, ", "))
	}
	if t := rest.Target(r); t != "" {
		if req.Driver == "" {
			return rest.BadRequest("storage pool %q: driver is required", req.Name)
		}
		if err := s.defineOn(r.Context(), poolKind, req.Name, req.Driver, req.Description, req.Config, t); err != nil {
			return err
		}
		e, err := s.loadEntity(r.Context(), poolKind, req.Name)
		if err != nil {
			return err
		}
		return writePool(w, e, t)
	}
	e, err := s.createEverywhere(r.Context(), poolKind, req.Name, req.Driver, req.Description, req.Config)
	if err != nil {
		return err
	}
	return writePool(w, e, "")
}

func writePool(w http.ResponseWriter, e *entityRow, target string) error {
	p, err := poolInfo(e, target)
	if err != nil {
		return err
	}
	return rest.WriteOK(w, p, rest.ETag(p.Writable()))
}

func poolInfo(e *entityRow, target string) (api.StoragePoolInfo, error) {
	status, cfg, locs, err := e.info(target)
	return api.StoragePoolInfo{
		StoragePool: api.StoragePool{Name: e.name, Driver: e.typ, Description: e.description, Config: cfg},
		Status:      status, Locations: locs, Message: e.message, UsedBy: []string{},
	}, err
}

func (s *Service) getStoragePools(w http.ResponseWriter, r *http.Request) error {
	es, err := s.listEntities(r.Context(), poolKind)
	if err != nil {
		return err
	}
	users, err := s.poolUsers(r.Context())
	if err != nil {
		return err
	}
	out := make([]api.StoragePoolInfo, 0, len(es))
	for _, e := range es {
		if t := rest.Target(r); t != "" && e.members[t] == nil {
			continue
		}
		p, err := poolInfo(e, rest.Target(r))
		if err != nil {
			return err
		}
		p.UsedBy = nonNil(users[e.name])
		out = append(out, p)
	}
	return rest.WriteList(w, r, "/1.0/storage-pools", out, func(p api.StoragePoolInfo) string { return p.Name })
}

func (s *Service) getStoragePool(w http.ResponseWriter, r *http.Request) error {
	e, err := s.namedEntity(r, poolKind)
	if err != nil {
		return err
	}
	p, err := poolInfo(e, rest.Target(r))
	if err != nil {
		return err
	}
	users, err := s.poolUsers(r.Context())
	if err != nil {
		return err
	}
	p.UsedBy = nonNil(users[e.name])
	return rest.WriteOK(w, p, rest.ETag(p.Writable()))
}

// nonNil is list, or an empty list for nil (LXD's used_by is never null).
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

func (s *Service) deleteStoragePool(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	if err := s.deleteEverywhere(r.Context(), poolKind, name); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// namedEntity loads the {name} entity or answers 404.
func (s *Service) namedEntity(r *http.Request, k *entityKind) (*entityRow, error) {
	name, err := rest.PathName(r)
	if err != nil {
		return nil, err
	}
	e, err := s.loadEntity(r.Context(), k, name)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, rest.NotFound("no %s named %q", k.noun, name)
	}
	return e, nil
}

// refuseIfPoolHasVolumes refuses deleting a pool that still holds volumes, naming them, or
// that a profile uses.
func (s *Service) refuseIfPoolHasVolumes(ctx context.Context, e *entityRow) error {
	names, err := s.poolVolumeHolders(ctx, e.id)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return s.refuseIfProfilesUsePool(ctx, e.name)
	}
	return rest.Conflict("storage pool %q still holds volumes: %s (delete them first)", e.name, strings.Join(names, ", "))
}

// refuseIfProfilesUsePool refuses deleting a pool a profile's device names (as LXD does):
// instances made from that profile keep their root filesystem in it.
func (s *Service) refuseIfProfilesUsePool(ctx context.Context, pool string) error {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT p.name FROM profiles_devices pd JOIN profiles p ON p.id = pd.profile_id
		WHERE pd.key = 'pool' AND pd.value = ? ORDER BY p.name`, pool)
	if err != nil || len(rows) == 0 {
		return err
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = db.Str(r[0])
	}
	return rest.Conflict("storage pool %q is in use by profile(s) %s", pool, strings.Join(names, ", "))
}
