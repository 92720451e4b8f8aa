package entity

import (
	"context"
	"encoding/json"
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
	if err := s.addInstanceDeviceUsers(ctx, out, "pool"); err != nil {
		return nil, err
	}
	return out, s.addProfileUsers(ctx, out, []string{"pool"}, false)
}

// networkUsers maps each network to the profiles whose nic devices name it (network= or
// parent=) and the instances made from them.
func (s *Service) networkUsers(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	if err := s.addInstanceDeviceUsers(ctx, out, "network", "parent"); err != nil {
		return nil, err
	}
	return out, s.addProfileUsers(ctx, out, []string{"network", "parent"}, true)
}

// addInstanceDeviceUsers adds to out, for each value of keys in an instance's own devices,
// that instance.
func (s *Service) addInstanceDeviceUsers(ctx context.Context, out map[string][]string, keys ...string) error {
	rows, err := s.db.Query(ctx, `SELECT i.name, d.value FROM instances i, json_each(i.devices) d ORDER BY i.name`)
	if err != nil {
		return err
	}
	for _, r := range rows {
		var kv map[string]string
		if json.Unmarshal([]byte(db.Str(r[1])), &kv) != nil {
			continue
		}
		for _, k := range keys {
			if ent := kv[k]; ent != "" && !(k == "pool" && kv["path"] != "/" && kv["source"] != "") {
				out[ent] = appendOnce(out[ent], "/1.0/instances/"+url.PathEscape(db.Str(r[0])))
			}
		}
	}
	return nil
}

// volumeUsers are the URLs of what attaches the custom volume vol of pool on member: the
// instances on that member whose own disk devices name it, and the profiles whose disk
// devices do (with the instances on that member using them).
func (s *Service) volumeUsers(ctx context.Context, pool, vol, member string) ([]string, error) {
	names := func(kv map[string]string) bool {
		return kv["type"] == "disk" && kv["pool"] == pool && kv["source"] == vol
	}
	rows, err := s.db.Query(ctx, `SELECT i.name, m.name, d.value, i.profiles FROM instances i JOIN members m ON m.id = i.member_id,
		json_each(i.devices) d ORDER BY i.name`)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, r := range rows {
		var kv map[string]string
		if db.Str(r[1]) == member && json.Unmarshal([]byte(db.Str(r[2])), &kv) == nil && names(kv) {
			out = appendOnce(out, "/1.0/instances/"+url.PathEscape(db.Str(r[0])))
		}
	}
	profs, err := s.db.Query(ctx, `SELECT p.name, a.value, b.value FROM profiles_devices a
		JOIN profiles_devices b ON b.profile_id = a.profile_id AND b.device = a.device AND b.key = 'source'
		JOIN profiles p ON p.id = a.profile_id WHERE a.key = 'pool' ORDER BY p.name`)
	if err != nil {
		return nil, err
	}
	using := map[string]bool{}
	for _, r := range profs {
		if db.Str(r[1]) == pool && db.Str(r[2]) == vol {
			using[db.Str(r[0])] = true
			out = appendOnce(out, "/1.0/profiles/"+url.PathEscape(db.Str(r[0])))
		}
	}
	if len(using) == 0 {
		return out, nil
	}
	insts, err := s.db.Query(ctx, `SELECT i.name, i.profiles FROM instances i JOIN members m ON m.id = i.member_id WHERE m.name = ? ORDER BY i.name`, member)
	if err != nil {
		return nil, err
	}
	for _, r := range insts {
		for _, prof := range strings.Split(db.Str(r[1]), ",") {
			if using[prof] {
				out = appendOnce(out, "/1.0/instances/"+url.PathEscape(db.Str(r[0])))
			}
		}
	}
	return out, nil
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
