package entity

import (
	"maps"
	"net/http"

	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// This file is PUT and PATCH of pools, networks and custom volumes, as LXD's clients send
// them (`lxc storage edit/set`, `lxc network edit/set`, `lxc storage volume edit/set`):
// the description can change; the configuration cannot change once the object exists (a
// changed, added or removed key is refused, naming it), since changing a created pool's
// or bridge's keys would mean redoing it on every member. If-Match is checked against the
// object's ETag (the hash of its description and config, as GET gives it).

// entityPut is the body of a PUT or PATCH: LXD's StoragePoolPut, NetworkPut and
// StorageVolumePut have the same fields.
type entityPut struct {
	Description string            `json:"description"`
	Config      map[string]string `json:"config"`
}

// decodePut reads a PUT (or, for PATCH, a body merged over cur) and refuses a changed
// configuration key of the object named what.
func decodePut(r *http.Request, what string, cur entityPut) (entityPut, error) {
	if err := rest.CheckIfMatch(r, cur); err != nil {
		return entityPut{}, err
	}
	var put entityPut
	if r.Method == http.MethodPatch {
		put = entityPut{Description: cur.Description, Config: maps.Clone(cur.Config)}
	}
	if err := rest.DecodeBody(r, &put); err != nil {
		return entityPut{}, err
	}
	if r.Method == http.MethodPatch && put.Config != nil {
		merged := maps.Clone(cur.Config)
		maps.Copy(merged, put.Config)
		put.Config = merged
	}
	if k, ok := rest.ChangedKey(cur.Config, put.Config, nil); ok {
		return entityPut{}, rest.BadRequest("config: changing %q of %s is not supported (only its description can change)", k, what)
	}
	return put, nil
}

// putEntity is PUT and PATCH of a pool or a network (?target= reads that member's view).
func (s *Service) putEntity(k *entityKind) rest.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		e, err := s.namedEntity(r, k)
		if err != nil {
			return err
		}
		_, cfg, _, err := e.info(rest.Target(r))
		if err != nil {
			return err
		}
		put, err := decodePut(r, k.noun+" "+e.name, entityPut{Description: e.description, Config: cfg})
		if err != nil {
			return err
		}
		if _, err := s.db.Exec(r.Context(), db.Stmt(`UPDATE `+k.table+` SET description = ? WHERE name = ?`, put.Description, e.name)); err != nil {
			return err
		}
		return rest.WriteOK(w, nil, "")
	}
}

// putVolume is PUT and PATCH of a custom volume (?target= names its member).
func (s *Service) putVolume(w http.ResponseWriter, r *http.Request) error {
	v, err := s.oneVolume(r.Context(), r.PathValue("name"), r.PathValue("vol"), rest.Target(r))
	if err != nil {
		return err
	}
	cur := v.api()
	put, err := decodePut(r, "volume "+v.name, entityPut{Description: cur.Description, Config: cur.Config})
	if err != nil {
		return err
	}
	if _, err := s.db.Exec(r.Context(), db.Stmt(`UPDATE storage_volumes SET description = ? WHERE id = ?`, put.Description, v.id)); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}
