package daemon

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"orch/modules/storage"
	"orch/nodeagent/api"
)

// poolKind is the storage pool flavour of the cluster-wide flow.
var poolKind = &entityKind{
	noun: "storage pool", entity: entityPool,
	table: "storage_pools", config: "storage_pools_config", members: "storage_pools_members",
	idCol: "pool_id", typeCol: "driver", internal: "/internal/storage/pools",
	create:       func(d *Daemon, ctx context.Context, req entityRequest) error { return d.createPoolHere(ctx, req) },
	delete:       func(d *Daemon, ctx context.Context, req entityRequest) error { return d.deletePoolHere(ctx, req) },
	beforeDelete: func(d *Daemon, ctx context.Context, e *entityRow) error { return d.refuseIfPoolHasVolumes(ctx, e) },
}

// poolDriver is this member's driver for a pool.
func (d *Daemon) poolDriver(req entityRequest) (storage.Driver, storage.Pool, error) {
	p := storage.Pool{Name: req.Name, AgentDir: d.cfg.Dir, Config: req.Config}
	drv, err := storage.New(req.Type, p, storage.Options{Logger: d.log.With("component", "storage")})
	return drv, p, err
}

func (d *Daemon) createPoolHere(ctx context.Context, req entityRequest) error {
	drv, _, err := d.poolDriver(req)
	if err != nil {
		return err
	}
	if err := drv.Create(ctx); err != nil {
		return err
	}
	d.log.Info("storage pool ready", "pool", req.Name, "driver", req.Type)
	return nil
}

func (d *Daemon) deletePoolHere(ctx context.Context, req entityRequest) error {
	drv, _, err := d.poolDriver(req)
	if err != nil {
		return err
	}
	if err := drv.Delete(ctx); err != nil {
		return err
	}
	d.log.Info("storage pool deleted", "pool", req.Name)
	return nil
}

func (d *Daemon) postStoragePool(w http.ResponseWriter, r *http.Request) error {
	var req api.StoragePool
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := storage.CheckName("pool", req.Name); err != nil {
		return badRequest("%v", err)
	}
	if req.Driver != "" && !slices.Contains(storage.Drivers, req.Driver) {
		return badRequest("storage pool %q: unknown driver %q (one of %s)", req.Name, req.Driver, strings.Join(storage.Drivers, ", "))
	}
	if t := targetOfRequest(r); t != "" {
		if req.Driver == "" {
			return badRequest("storage pool %q: driver is required", req.Name)
		}
		if err := d.defineOn(r.Context(), poolKind, req.Name, req.Driver, req.Description, req.Config, t); err != nil {
			return err
		}
		e, err := d.loadEntity(r.Context(), poolKind, req.Name)
		if err != nil {
			return err
		}
		return writePool(w, e, t)
	}
	e, err := d.createEverywhere(r.Context(), poolKind, req.Name, req.Driver, req.Description, req.Config)
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
	return writeOK(w, p, "")
}

func poolInfo(e *entityRow, target string) (api.StoragePoolInfo, error) {
	status, cfg, locs, err := e.info(target)
	return api.StoragePoolInfo{
		StoragePool: api.StoragePool{Name: e.name, Driver: e.typ, Description: e.description, Config: cfg},
		Status:      status, Locations: locs, Message: e.message,
	}, err
}

func (d *Daemon) getStoragePools(w http.ResponseWriter, r *http.Request) error {
	es, err := d.listEntities(r.Context(), poolKind)
	if err != nil {
		return err
	}
	out := make([]api.StoragePoolInfo, 0, len(es))
	for _, e := range es {
		if t := targetOfRequest(r); t != "" && e.members[t] == nil {
			continue
		}
		p, err := poolInfo(e, targetOfRequest(r))
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	return writeOK(w, out, "")
}

func (d *Daemon) getStoragePool(w http.ResponseWriter, r *http.Request) error {
	e, err := d.namedEntity(r, poolKind)
	if err != nil {
		return err
	}
	return writePool(w, e, targetOfRequest(r))
}

func (d *Daemon) deleteStoragePool(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	if err := d.deleteEverywhere(r.Context(), poolKind, name); err != nil {
		return err
	}
	return writeOK(w, nil, "")
}

// namedEntity loads the {name} entity or answers 404.
func (d *Daemon) namedEntity(r *http.Request, k *entityKind) (*entityRow, error) {
	name, err := pathName(r)
	if err != nil {
		return nil, err
	}
	e, err := d.loadEntity(r.Context(), k, name)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, notFound("no %s named %q", k.noun, name)
	}
	return e, nil
}

// refuseIfPoolHasVolumes refuses deleting a pool that still holds volumes, naming them, or
// that a profile uses.
func (d *Daemon) refuseIfPoolHasVolumes(ctx context.Context, e *entityRow) error {
	names, err := d.poolVolumeHolders(ctx, e.id)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return d.refuseIfProfilesUsePool(ctx, e.name)
	}
	return conflict("storage pool %q still holds volumes: %s (delete them first)", e.name, strings.Join(names, ", "))
}

// refuseIfProfilesUsePool refuses deleting a pool a profile's device names (as LXD does):
// instances made from that profile keep their root filesystem in it.
func (d *Daemon) refuseIfProfilesUsePool(ctx context.Context, pool string) error {
	rows, err := d.query(ctx, `SELECT DISTINCT p.name FROM profiles_devices pd JOIN profiles p ON p.id = pd.profile_id
		WHERE pd.key = 'pool' AND pd.value = ? ORDER BY p.name`, pool)
	if err != nil || len(rows) == 0 {
		return err
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = str(r[0])
	}
	return conflict("storage pool %q is in use by profile(s) %s", pool, strings.Join(names, ", "))
}
