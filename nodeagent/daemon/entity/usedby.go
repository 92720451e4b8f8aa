package entity

import (
	"context"
	"net/url"
	"strings"

	"orch/modules/storage"
	"orch/nodeagent/daemon/db"
)

// LXD's used_by of pools and networks: the URLs of what uses each, read in one pass for
// every pool or network (a list costs the same as one).

// poolUsers maps each pool to its users: its volumes (an instance's root volume as the
// instance, a custom volume with its member as ?target=) and the profiles whose devices
// name it.
func (s *Service) poolUsers(ctx context.Context) (map[string][]string, error) {
	rows, err := s.db.Query(ctx, `SELECT p.name, v.type, v.name, m.name FROM storage_volumes v
		JOIN storage_pools p ON p.id = v.pool_id JOIN members m ON m.id = v.member_id ORDER BY p.name, v.type, v.name, m.id`)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, r := range rows {
		pool, typ, name, member := db.Str(r[0]), db.Str(r[1]), db.Str(r[2]), db.Str(r[3])
		u := "/1.0/instances/" + url.PathEscape(name)
		if typ != string(storage.VolumeContainer) {
			u = "/1.0/storage-pools/" + url.PathEscape(pool) + "/volumes/" + url.PathEscape(typ) + "/" + url.PathEscape(name) + "?target=" + url.QueryEscape(member)
		}
		out[pool] = append(out[pool], u)
	}
	return out, s.addProfileUsers(ctx, out, []string{"pool"}, false)
}

// networkUsers maps each network to the profiles whose nic devices name it (network= or
// parent=) and the instances made from them.
func (s *Service) networkUsers(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	return out, s.addProfileUsers(ctx, out, []string{"network", "parent"}, true)
}

// addProfileUsers adds to out, for each value of a profile device key in keys, that
// profile and (withInstances) the instances made from it, each URL once.
func (s *Service) addProfileUsers(ctx context.Context, out map[string][]string, keys []string, withInstances bool) error {
	q := `SELECT DISTINCT pd.value, p.name FROM profiles_devices pd JOIN profiles p ON p.id = pd.profile_id
		WHERE pd.key IN (?` + strings.Repeat(", ?", len(keys)-1) + `) ORDER BY p.name`
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil || len(rows) == 0 {
		return err
	}
	profiles := map[string][]string{} // profile → entities its devices name
	for _, r := range rows {
		ent, prof := db.Str(r[0]), db.Str(r[1])
		out[ent] = appendOnce(out[ent], "/1.0/profiles/"+url.PathEscape(prof))
		profiles[prof] = append(profiles[prof], ent)
	}
	if !withInstances {
		return nil
	}
	insts, err := s.db.Query(ctx, `SELECT name, profiles FROM instances ORDER BY name`)
	if err != nil {
		return err
	}
	for _, r := range insts {
		for _, prof := range strings.Split(db.Str(r[1]), ",") {
			for _, ent := range profiles[prof] {
				out[ent] = appendOnce(out[ent], "/1.0/instances/"+url.PathEscape(db.Str(r[0])))
			}
		}
	}
	return nil
}

// appendOnce appends u unless list has it.
func appendOnce(list []string, u string) []string {
	for _, v := range list {
		if v == u {
			return list
		}
	}
	return append(list, u)
}
