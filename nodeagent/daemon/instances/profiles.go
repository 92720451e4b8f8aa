package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// profiles reads the profiles (all, or the one named) with their config and devices.
func (s *Service) profiles(ctx context.Context, name string) ([]api.Profile, error) {
	q := `SELECT p.name, p.description, 'c', c.key, c.value, '' FROM profiles p JOIN profiles_config c ON c.profile_id = p.id
	      UNION ALL SELECT p.name, p.description, 'd', dv.key, dv.value, dv.device FROM profiles p JOIN profiles_devices dv ON dv.profile_id = p.id
	      UNION ALL SELECT p.name, p.description, '', '', '', '' FROM profiles p`
	rows, err := s.db.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	byName := map[string]*api.Profile{}
	for _, r := range rows {
		n := db.Str(r[0])
		if name != "" && n != name {
			continue
		}
		p := byName[n]
		if p == nil {
			p = &api.Profile{Name: n, Description: db.Str(r[1]), Config: map[string]string{}, Devices: map[string]map[string]string{}}
			byName[n] = p
		}
		switch db.Str(r[2]) {
		case "c":
			p.Config[db.Str(r[3])] = db.Str(r[4])
		case "d":
			dev := db.Str(r[5])
			if p.Devices[dev] == nil {
				p.Devices[dev] = map[string]string{}
			}
			p.Devices[dev][db.Str(r[3])] = db.Str(r[4])
		}
	}
	out := make([]api.Profile, 0, len(byName))
	for _, p := range byName {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// patchProfile is cur with patch's description (when set), config keys and devices merged
// in, as LXD's PATCH.
func patchProfile(cur, patch api.Profile) api.Profile {
	out := api.Profile{Name: cur.Name, Description: cur.Description, Config: maps.Clone(cur.Config), Devices: maps.Clone(cur.Devices)}
	if patch.Description != "" {
		out.Description = patch.Description
	}
	maps.Copy(out.Config, patch.Config)
	maps.Copy(out.Devices, patch.Devices)
	return out
}

// ensureDefaultProfile creates an empty "default" profile when the preseed made none.
func (s *Service) ensureDefaultProfile(ctx context.Context) error {
	_, err := s.db.Exec(ctx, db.Stmt(`INSERT INTO profiles(name, description) VALUES('default', 'Default profile') ON CONFLICT(name) DO NOTHING`))
	return err
}

func (s *Service) getProfiles(w http.ResponseWriter, r *http.Request) error {
	if err := s.ensureDefaultProfile(r.Context()); err != nil {
		return err
	}
	ps, err := s.profileInfos(r.Context(), "")
	if err != nil {
		return err
	}
	return rest.WriteList(w, r, "/1.0/profiles", ps, func(p api.ProfileInfo) string { return p.Name })
}

// profileInfos are the profiles (all, or the one named) as LXD shows them: with the URLs
// of the instances using each.
func (s *Service) profileInfos(ctx context.Context, name string) ([]api.ProfileInfo, error) {
	ps, err := s.profiles(ctx, name)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT name, profiles FROM instances ORDER BY name`)
	if err != nil {
		return nil, err
	}
	out := make([]api.ProfileInfo, len(ps))
	for i, p := range ps {
		out[i] = api.ProfileInfo{Profile: p, UsedBy: []string{}}
		for _, row := range rows {
			if slices.Contains(strings.Split(db.Str(row[1]), ","), p.Name) {
				out[i].UsedBy = append(out[i].UsedBy, "/1.0/instances/"+url.PathEscape(db.Str(row[0])))
			}
		}
	}
	return out, nil
}

// profileWritable is the editable part of a profile (LXD's ProfilePut), whose hash is its
// ETag.
func profileWritable(p api.Profile) any { return []any{p.Config, p.Description, p.Devices} }

func (s *Service) getProfile(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	if name == "default" {
		if err := s.ensureDefaultProfile(r.Context()); err != nil {
			return err
		}
	}
	ps, err := s.profileInfos(r.Context(), name)
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return rest.NotFound("no profile named %q", name)
	}
	return rest.WriteOK(w, ps[0], rest.ETag(profileWritable(ps[0].Profile)))
}

func (s *Service) postProfile(w http.ResponseWriter, r *http.Request) error {
	var p api.Profile
	if err := rest.DecodeBody(r, &p); err != nil {
		return err
	}
	if err := checkProfile(p); err != nil {
		return err
	}
	if _, err := s.db.Exec(r.Context(), ProfileStatements(p)...); err != nil {
		if rest.IsUnique(err) {
			return rest.Conflict("a profile named %q already exists", p.Name)
		}
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// putProfile is PUT and PATCH /1.0/profiles/{name}: PUT replaces the profile, PATCH
// merges the body's config keys and devices into it (as LXD); If-Match is checked against
// the profile's ETag.
func (s *Service) putProfile(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	if name == "default" {
		if err := s.ensureDefaultProfile(r.Context()); err != nil {
			return err
		}
	}
	cur, err := s.profiles(r.Context(), name)
	if err != nil {
		return err
	}
	if len(cur) == 0 {
		return rest.NotFound("no profile named %q", name)
	}
	if err := rest.CheckIfMatch(r, profileWritable(cur[0])); err != nil {
		return err
	}
	var p api.Profile
	if err := decodeIgnoringUnknown(r, &p); err != nil {
		return err
	}
	if r.Method == http.MethodPatch {
		p = patchProfile(cur[0], p)
	}
	if p.Name == "" {
		p.Name = name
	}
	if p.Name != name {
		return rest.BadRequest("profile name %q in the body differs from %q in the path (renaming is not supported)", p.Name, name)
	}
	if err := checkProfile(p); err != nil {
		return err
	}
	if err := s.replaceProfile(r.Context(), p); err != nil {
		return err
	}
	if err := s.applyProfile(r.Context(), name); err != nil {
		if rerr := s.replaceProfile(context.WithoutCancel(r.Context()), cur[0]); rerr != nil {
			return fmt.Errorf("%w; putting the profile back failed: %v", err, rerr)
		}
		_ = s.applyProfile(context.WithoutCancel(r.Context()), name)
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// decodeIgnoringUnknown decodes a request body as LXD does, ignoring fields it does not
// know: Ansible's lxd_profile PUTs the whole answer of its GET (type, status, metadata…)
// with the profile's fields beside them, which a strict decoding refused.
func decodeIgnoringUnknown(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, 16<<20)).Decode(v); err != nil {
		return api.Errorf(http.StatusBadRequest, "request body: %v", err)
	}
	return nil
}

// replaceProfile writes p over the profile of its name, in one raft entry.
func (s *Service) replaceProfile(ctx context.Context, p api.Profile) error {
	stmts := []store.Statement{
		{SQL: `DELETE FROM profiles WHERE name = ?`, Args: []any{p.Name}, Expect: store.Int64(1)},
	}
	stmts = append(stmts, ProfileStatements(p)...)
	_, err := s.db.Exec(ctx, stmts...)
	if rest.IsConflict(err) {
		return rest.NotFound("no profile named %q", p.Name)
	}
	return err
}

// applyProfile has the owner of every instance using the profile give its container what
// the profile says now (limits at once; further devices only while it is stopped). An
// OFFLINE owner gets it when it next starts the container; the first failure of an ONLINE
// owner is returned, naming the instance.
func (s *Service) applyProfile(ctx context.Context, profile string) error {
	rows, err := s.instances(ctx, "")
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.state != instCreated || !slices.Contains(profileList(row.profiles), profile) {
			continue
		}
		if err := s.applyOn(ctx, row); err != nil {
			return fmt.Errorf("profile %s: instance %s on member %s: %w", profile, row.name, row.member, err)
		}
	}
	return nil
}

// applyOn has the instance's owner refresh its container's settings.
func (s *Service) applyOn(ctx context.Context, row instanceRow) error {
	if row.member == s.members.Self() {
		m, _, err := s.drivers()
		if err != nil {
			return err
		}
		return s.refreshSettings(ctx, m, row)
	}
	if err := s.members.RequireOnline(ctx, row.member); err != nil {
		s.log.Info("instance settings left for its owner's next start", "instance", row.name, "member", row.member, "err", err)
		return nil
	}
	return s.postTo(ctx, row.address, "/internal/instances/"+row.name+"/settings", nil)
}

// postSettings is the owner's part of applyOn.
func (s *Service) postSettings(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	if err := s.refreshSettings(r.Context(), m, row); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

func (s *Service) deleteProfile(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	if name == "default" {
		return rest.BadRequest("the default profile cannot be deleted")
	}
	// The check and the delete are one statement, so an instance created meanwhile with
	// this profile either keeps it or is refused (placeInstance checks its profiles).
	_, err = s.db.Exec(r.Context(), store.Statement{
		SQL: `DELETE FROM profiles WHERE name = ?
		      AND NOT EXISTS (SELECT 1 FROM instances WHERE ',' || profiles || ',' LIKE ?)`,
		Args: []any{name, "%," + name + ",%"}, Expect: store.Int64(1)})
	if rest.IsConflict(err) {
		return s.whyProfileKept(r.Context(), name)
	}
	if err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// renameProfile is POST /1.0/profiles/{name} with {"name": NEW}, as LXD's: the default
// profile keeps its name, and so does a profile instances use (they name their profiles;
// the check and the rename are one statement, as deleteProfile's).
func (s *Service) renameProfile(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	var post struct {
		Name string `json:"name"`
	}
	if err := rest.DecodeBody(r, &post); err != nil {
		return err
	}
	if err := checkProfile(api.Profile{Name: post.Name}); err != nil {
		return err
	}
	if name == "default" {
		return rest.BadRequest("the default profile cannot be renamed")
	}
	_, err = s.db.Exec(r.Context(), store.Statement{
		SQL: `UPDATE profiles SET name = ? WHERE name = ?
		      AND NOT EXISTS (SELECT 1 FROM instances WHERE ',' || profiles || ',' LIKE ?)`,
		Args: []any{post.Name, name, "%," + name + ",%"}, Expect: store.Int64(1)})
	switch {
	case rest.IsUnique(err):
		return rest.Conflict("a profile named %q already exists", post.Name)
	case rest.IsConflict(err):
		return s.whyProfileKept(r.Context(), name)
	case err != nil:
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// whyProfileKept explains a profile delete that deleted nothing.
func (s *Service) whyProfileKept(ctx context.Context, name string) error {
	rows, err := s.db.Query(ctx, `SELECT name FROM instances WHERE ',' || profiles || ',' LIKE ? ORDER BY name`, "%,"+name+",%")
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		return rest.Conflict("profile %q is used by instance %s", name, db.Str(rows[0][0]))
	}
	return rest.NotFound("no profile named %q", name)
}

// checkProfile validates a profile's name and devices.
func checkProfile(p api.Profile) error {
	if p.Name == "" || len(p.Name) > 63 {
		return rest.BadRequest("profile name: 1 to 63 characters")
	}
	if err := checkDevices(p.Devices); err != nil {
		return rest.BadRequest("profile %s: %v", p.Name, err)
	}
	if _, err := parseLimits(p.Config); err != nil {
		return rest.BadRequest("profile %s: %v", p.Name, err)
	}
	return nil
}

// launchSpec is what a member needs of the profiles to make a container.
type launchSpec struct {
	// pool holds the root disk.
	pool string
	// parent is an existing host bridge for eth0 (nic "parent"); network a managed
	// network (nic "network"), whose bridge has its name. At most one is set.
	parent, network string
	// hwaddr is eth0's MAC address, "" for LXC's choice.
	hwaddr string
}

// eth0Bridge is the host bridge eth0 goes on, "" for no eth0 (see bridgeHere).
func (s *Service) eth0Bridge(ctx context.Context, spec launchSpec) (string, error) {
	if spec.network == "" && spec.parent == "" {
		return "", nil
	}
	return s.bridgeHere(ctx, "eth0", spec)
}

// ProfileStatements record a new profile with its config and devices (a POST, or a
// preseed's profiles), in a deterministic order.
func ProfileStatements(pr api.Profile) []store.Statement {
	out := []store.Statement{{SQL: `INSERT INTO profiles(name, description) VALUES(?, ?)`, Args: []any{pr.Name, pr.Description}}}
	for _, k := range db.SortedKeys(pr.Config) {
		out = append(out, store.Statement{
			SQL:  `INSERT INTO profiles_config(profile_id, key, value) VALUES((SELECT id FROM profiles WHERE name = ?), ?, ?)`,
			Args: []any{pr.Name, k, pr.Config[k]},
		})
	}
	devs := make([]string, 0, len(pr.Devices))
	for dev := range pr.Devices {
		devs = append(devs, dev)
	}
	sort.Strings(devs)
	for _, dev := range devs {
		for _, k := range db.SortedKeys(pr.Devices[dev]) {
			out = append(out, store.Statement{
				SQL:  `INSERT INTO profiles_devices(profile_id, device, key, value) VALUES((SELECT id FROM profiles WHERE name = ?), ?, ?, ?)`,
				Args: []any{pr.Name, dev, k, pr.Devices[dev][k]},
			})
		}
	}
	return out
}
