package entity

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"orch/modules/storage"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// A custom volume lives on one member of a pool. Its row is inserted (state Creating)
// before the member makes it, so that two creates of one name on one member cannot both
// reach the driver; a failed create drops the row again.

// volumeRequest is the body of the internal volume calls.
type volumeRequest struct {
	Pool   entityRequest     `json:"pool"`
	Name   string            `json:"name"`
	Config map[string]string `json:"config,omitempty"`
}

// volumeRow is one storage_volumes row.
type volumeRow struct {
	id                 int64
	name, typ, pool    string
	member, address    string
	description, state string
	config             map[string]string
}

func (v volumeRow) api() api.StorageVolume {
	cfg := v.config
	if cfg == nil {
		cfg = map[string]string{}
	}
	return api.StorageVolume{Name: v.name, Type: v.typ, Pool: v.pool, Location: v.member, Description: v.description,
		Config: cfg, UsedBy: []string{}, ContentType: "filesystem", Project: "default"}
}

// volumes reads a pool's volumes of type typ ("all": every type), optionally only those
// named name (and on target).
func (s *Service) volumes(ctx context.Context, pool, typ, name, target string) ([]volumeRow, error) {
	sql := `SELECT v.id, v.name, v.type, p.name, m.Name, m.Address, v.description, v.state
		FROM storage_volumes v JOIN storage_pools p ON p.id = v.pool_id JOIN members m ON m.id = v.member_id
		WHERE p.name = ?`
	args := []any{pool}
	if typ != "all" {
		sql += ` AND v.type = ?`
		args = append(args, typ)
	}
	if name != "" {
		sql += ` AND v.name = ?`
		args = append(args, name)
	}
	if target != "" {
		sql += ` AND m.Name = ?`
		args = append(args, target)
	}
	rows, err := s.db.Query(ctx, sql+` ORDER BY v.name, m.id`, args...)
	if err != nil {
		return nil, err
	}
	out := make([]volumeRow, 0, len(rows))
	for _, r := range rows {
		v := volumeRow{id: db.I64(r[0]), name: db.Str(r[1]), typ: db.Str(r[2]), pool: db.Str(r[3]), member: db.Str(r[4]), address: db.Str(r[5]),
			description: db.Str(r[6]), state: db.Str(r[7]), config: map[string]string{}}
		cfg, err := s.db.Query(ctx, `SELECT key, value FROM storage_volumes_config WHERE volume_id = ?`, v.id)
		if err != nil {
			return nil, err
		}
		for _, c := range cfg {
			v.config[db.Str(c[0])] = db.Str(c[1])
		}
		out = append(out, v)
	}
	return out, nil
}

// oneVolume resolves the custom volume pool/name[@target]; a name on several members
// needs a target.
func (s *Service) oneVolume(ctx context.Context, pool, name, target string) (volumeRow, error) {
	vs, err := s.volumes(ctx, pool, string(storage.VolumeCustom), name, target)
	if err != nil {
		return volumeRow{}, err
	}
	switch {
	case len(vs) == 0 && target != "":
		return volumeRow{}, rest.NotFound("no volume %q in pool %q on member %q", name, pool, target)
	case len(vs) == 0:
		return volumeRow{}, rest.NotFound("no volume %q in pool %q", name, pool)
	case len(vs) > 1:
		members := make([]string, len(vs))
		for i, v := range vs {
			members[i] = v.member
		}
		return volumeRow{}, rest.BadRequest("volume %q exists on several members (%s): choose one with --target", name, strings.Join(members, ", "))
	}
	return vs[0], nil
}

// getVolumes lists a pool's custom volumes, or those of ?type=container or all (instances'
// root disks are container volumes, listed as LXD does with their type).
func (s *Service) getVolumes(w http.ResponseWriter, r *http.Request) error {
	e, err := s.namedEntity(r, poolKind)
	if err != nil {
		return err
	}
	typ := r.URL.Query().Get("type")
	if pt := r.PathValue("type"); pt != "" { // /volumes/{type}: that type only
		typ = pt
	}
	switch typ {
	case "":
		typ = "all" // as LXD: /volumes lists every type
	case string(storage.VolumeCustom), string(storage.VolumeContainer), "all":
	default:
		return rest.BadRequest("volume type %q: custom, container or all", typ)
	}
	vs, err := s.volumes(r.Context(), e.name, typ, "", rest.Target(r))
	if err != nil {
		return err
	}
	out := make([]api.StorageVolume, len(vs))
	for i, v := range vs {
		if out[i], err = s.volumeAPI(r.Context(), v); err != nil {
			return err
		}
	}
	prefix := "/1.0/storage-pools/" + url.PathEscape(e.name) + "/volumes"
	return rest.WriteList(w, r, prefix, out, func(v api.StorageVolume) string { return v.Type + "/" + v.Name })
}

func (s *Service) getVolume(w http.ResponseWriter, r *http.Request) error {
	v, err := s.oneVolume(r.Context(), r.PathValue("name"), r.PathValue("vol"), rest.Target(r))
	if err != nil {
		return err
	}
	av, err := s.volumeAPI(r.Context(), v)
	if err != nil {
		return err
	}
	return rest.WriteOK(w, av, rest.ETag(av.Writable()))
}

// volumeAPI is v as LXD shows it, with used_by for a custom volume.
func (s *Service) volumeAPI(ctx context.Context, v volumeRow) (api.StorageVolume, error) {
	av := v.api()
	if v.typ != string(storage.VolumeCustom) {
		return av, nil
	}
	users, err := s.volumeUsers(ctx, v.pool, v.name, v.member)
	av.UsedBy = users
	return av, err
}

func (s *Service) postVolume(w http.ResponseWriter, r *http.Request) error {
	var req api.StorageVolumesPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if req.Type != "" && req.Type != "custom" {
		return rest.BadRequest("volume type %q: only custom volumes can be created", req.Type)
	}
	if req.ContentType != "" && req.ContentType != "filesystem" {
		return rest.BadRequest("content_type %q: only filesystem volumes are supported", req.ContentType)
	}
	if req.Source != nil && !req.Source.Empty() {
		return rest.BadRequest("source: copying or migrating volumes is not supported (only new empty volumes)")
	}
	if err := storage.CheckName("volume", req.Name); err != nil {
		return rest.BadRequest("%v", err)
	}
	e, err := s.namedEntity(r, poolKind)
	if err != nil {
		return err
	}
	loc := rest.Target(r)
	if loc == "" {
		loc = s.members.Self()
	}
	if p := e.members[loc]; p == nil || p.state != api.StatusCreated {
		return rest.Conflict("storage pool %q is not created on member %q", e.name, loc)
	}
	v, err := s.createVolume(r.Context(), e, loc, req)
	if err != nil {
		return err
	}
	av, err := s.volumeAPI(r.Context(), v)
	if err != nil {
		return err
	}
	return rest.WriteOK(w, av, rest.ETag(av.Writable()))
}

// createVolume records the volume, has its member make it, and drops the row on failure.
func (s *Service) createVolume(ctx context.Context, e *entityRow, loc string, req api.StorageVolumesPost) (volumeRow, error) {
	if err := s.members.RequireOnline(ctx, loc); err != nil {
		return volumeRow{}, err
	}
	mid := `(SELECT id FROM members WHERE name = ?)`
	_, err := s.db.Exec(ctx, db.Stmt(`INSERT INTO storage_volumes(pool_id, member_id, name, type, description, state) VALUES(?, `+mid+`, ?, 'custom', ?, 'Creating')`,
		e.id, loc, req.Name, req.Description))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return volumeRow{}, rest.Conflict("volume %q already exists in pool %q on member %q", req.Name, e.name, loc)
		}
		return volumeRow{}, err
	}
	v, err := s.oneVolume(ctx, e.name, req.Name, loc)
	if err != nil {
		return volumeRow{}, err
	}
	vr := volumeRequest{Pool: e.request(loc), Name: req.Name, Config: req.Config}
	if err := s.volumeOn(ctx, v, vr, true); err != nil {
		_, _ = s.db.Exec(context.WithoutCancel(ctx), db.Stmt(`DELETE FROM storage_volumes WHERE id = ?`, v.id))
		return volumeRow{}, err
	}
	stmts := volumeCreatedStatements(v.id, req.Config)
	if _, err := s.db.Exec(ctx, stmts...); err != nil {
		return volumeRow{}, err
	}
	v.state, v.config = "Created", req.Config
	return v, nil
}

func volumeCreatedStatements(id int64, cfg map[string]string) []store.Statement {
	out := []store.Statement{db.Stmt(`UPDATE storage_volumes SET state = 'Created' WHERE id = ?`, id)}
	for _, k := range db.SortedKeys(cfg) {
		out = append(out, db.Stmt(`INSERT INTO storage_volumes_config(volume_id, key, value) VALUES(?, ?, ?)`, id, k, cfg[k]))
	}
	return out
}

func (s *Service) deleteVolume(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	v, err := s.oneVolume(ctx, r.PathValue("name"), r.PathValue("vol"), rest.Target(r))
	if err != nil {
		return err
	}
	if err := s.members.RequireOnline(ctx, v.member); err != nil {
		return err
	}
	users, err := s.volumeUsers(ctx, v.pool, v.name, v.member)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return rest.Conflict("storage volume %q is in use by %s (detach it first)", v.name, strings.Join(users, ", "))
	}
	e, err := s.loadEntity(ctx, poolKind, v.pool)
	if err != nil || e == nil {
		return rest.NotFound("no storage pool named %q", v.pool)
	}
	if err := s.volumeOn(ctx, v, volumeRequest{Pool: e.request(v.member), Name: v.name}, false); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, db.Stmt(`DELETE FROM storage_volumes WHERE id = ?`, v.id)); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// volumeOn makes or removes the volume on its member: here or over the internal API.
func (s *Service) volumeOn(ctx context.Context, v volumeRow, req volumeRequest, create bool) error {
	if v.member == s.members.Self() {
		return s.volumeHere(ctx, req, create)
	}
	path := "/internal/storage/volumes/delete"
	if create {
		path = "/internal/storage/volumes/create"
	}
	return s.peers.Post(ctx, v.address, path, req, nil)
}

func (s *Service) volumeHere(ctx context.Context, req volumeRequest, create bool) error {
	drv, _, err := s.poolDriver(req.Pool)
	if err != nil {
		return err
	}
	if create {
		return drv.CreateVolume(ctx, req.Name, req.Config)
	}
	return drv.DeleteVolume(ctx, req.Name)
}

func (s *Service) postInternalVolume(create bool) rest.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req volumeRequest
		if err := rest.DecodeBody(r, &req); err != nil {
			return err
		}
		if err := s.volumeHere(r.Context(), req, create); err != nil {
			return api.Errorf(http.StatusInternalServerError, "%s: %v", s.members.Self(), err)
		}
		return rest.WriteOK(w, nil, "")
	}
}

// memberVolumes names the volumes a member holds ("pool/volume", "pool/container/NAME"
// for an instance's root disk).
func (s *Service) memberVolumes(ctx context.Context, member string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT p.name, v.name, v.type FROM storage_volumes v JOIN storage_pools p ON p.id = v.pool_id
		WHERE v.member_id = (SELECT id FROM members WHERE name = ?) ORDER BY p.name, v.type DESC, v.name`, member)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = db.Str(r[0]) + "/" + db.Str(r[1])
		if db.Str(r[2]) != string(storage.VolumeCustom) {
			out[i] = db.Str(r[0]) + "/" + db.Str(r[2]) + "/" + db.Str(r[1])
		}
	}
	return out, nil
}

// poolVolumeHolders names what still holds volumes in pool id: "instance c1 (on node1)"
// for root disks, "vol (on node1)" for custom volumes.
func (s *Service) poolVolumeHolders(ctx context.Context, poolID int64) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT v.name, m.Name, v.type FROM storage_volumes v JOIN members m ON m.id = v.member_id
		WHERE v.pool_id = ? ORDER BY v.type, v.name, m.Name`, poolID)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprintf("%s (on %s)", db.Str(r[0]), db.Str(r[1]))
		if db.Str(r[2]) == string(storage.VolumeContainer) {
			out[i] = "instance " + out[i]
		}
	}
	return out, nil
}

// refuseIfHoldsVolumes refuses a clean removal of a member that still holds volumes.
func (s *Service) refuseIfHoldsVolumes(ctx context.Context, member string) error {
	vs, err := s.memberVolumes(ctx, member)
	if err != nil {
		return err
	}
	if len(vs) > 0 {
		return rest.Conflict("member %q still holds storage volumes: %s (delete them first)", member, strings.Join(vs, ", "))
	}
	return nil
}
