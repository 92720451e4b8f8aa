package memberinfo

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// LXD's cluster groups: named sets of members (`lxc cluster group create/assign/add/
// remove/edit/rename/delete`), which `launch --target @GROUP` places instances on. Every
// member is in at least one group: a member without a group row is in "default", which
// always exists and can be neither renamed nor deleted; a group is deleted only when empty.
// Writes run on the leader, each one statement list in one raft entry.

// defaultGroup is LXD's group of every member nobody placed elsewhere.
const defaultGroup = "default"

// groupRoutes registers /1.0/cluster/groups.
func (s *Service) groupRoutes(m Router) {
	m.Handle("GET /1.0/cluster/groups", rest.Trusted, s.getGroups)
	m.Handle("POST /1.0/cluster/groups", rest.Trusted, m.OnLeader(s.postGroup))
	m.Handle("GET /1.0/cluster/groups/{name}", rest.Trusted, s.getGroup)
	m.Handle("PUT /1.0/cluster/groups/{name}", rest.Trusted, m.OnLeader(s.putGroup))
	m.Handle("PATCH /1.0/cluster/groups/{name}", rest.Trusted, m.OnLeader(s.putGroup))
	m.Handle("POST /1.0/cluster/groups/{name}", rest.Trusted, m.OnLeader(s.renameGroup))
	m.Handle("DELETE /1.0/cluster/groups/{name}", rest.Trusted, m.OnLeader(s.deleteGroup))
}

// groupsOf reads every group with its members, and every member's groups, linearizably
// (local: read this replica, for callers that just read linearizably). A database without
// the tables (before schema update 2) has only "default" with every member.
func (s *Service) groupsOf(ctx context.Context, local bool) (groups map[string]*api.ClusterGroup, byMember map[string][]string, err error) {
	read := s.db.Query
	if local {
		read = s.db.QueryLocal
	}
	rows, err := read(ctx, `SELECT g.name, g.description, '' FROM cluster_groups g
		UNION ALL SELECT g.name, '', m.name FROM cluster_groups_members gm
		  JOIN cluster_groups g ON g.id = gm.group_id JOIN members m ON m.id = gm.member_id
		UNION ALL SELECT '', '', m.name FROM members m`)
	if err != nil && !strings.Contains(err.Error(), "no such table") {
		return nil, nil, err
	}
	groups = map[string]*api.ClusterGroup{defaultGroup: {Name: defaultGroup, Description: "Default cluster group"}}
	byMember = map[string][]string{}
	var members []string
	for _, r := range rows {
		g, desc, m := db.Str(r[0]), db.Str(r[1]), db.Str(r[2])
		switch {
		case g == "":
			members = append(members, m)
		case m == "":
			groups[g] = &api.ClusterGroup{Name: g, Description: desc}
		default:
			byMember[m] = append(byMember[m], g)
		}
	}
	for _, m := range members {
		if len(byMember[m]) == 0 {
			byMember[m] = []string{defaultGroup}
		}
		for _, g := range byMember[m] {
			if groups[g] != nil {
				groups[g].Members = append(groups[g].Members, m)
			}
		}
	}
	for _, g := range groups {
		g.Members = nonNil(g.Members)
		slices.Sort(g.Members)
		g.UsedBy = []string{}
	}
	for m := range byMember {
		slices.Sort(byMember[m])
	}
	return groups, byMember, nil
}

// GroupMembers names the members of group, or reports that there is no such group.
func (s *Service) GroupMembers(ctx context.Context, group string) ([]string, bool, error) {
	groups, _, err := s.groupsOf(ctx, false)
	if err != nil {
		return nil, false, err
	}
	g, ok := groups[group]
	if !ok {
		return nil, false, nil
	}
	return g.Members, true, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (s *Service) getGroups(w http.ResponseWriter, r *http.Request) error {
	groups, _, err := s.groupsOf(r.Context(), false)
	if err != nil {
		return err
	}
	out := make([]api.ClusterGroup, 0, len(groups))
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		out = append(out, *groups[name])
	}
	return rest.WriteList(w, r, "/1.0/cluster/groups", out, func(g api.ClusterGroup) string { return g.Name })
}

// group reads one group, or a 404 naming it.
func (s *Service) group(ctx context.Context, name string) (*api.ClusterGroup, map[string][]string, error) {
	groups, byMember, err := s.groupsOf(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	g, ok := groups[name]
	if !ok {
		return nil, nil, rest.NotFound("no cluster group named %q", name)
	}
	return g, byMember, nil
}

// groupWritable is a group's editable part, whose hash is its ETag.
func groupWritable(g *api.ClusterGroup) any { return []any{g.Description, g.Members} }

func (s *Service) getGroup(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	g, _, err := s.group(r.Context(), name)
	if err != nil {
		return err
	}
	return rest.WriteOK(w, g, rest.ETag(groupWritable(g)))
}

// checkGroupName validates a new group's name.
func checkGroupName(name string) error {
	if name == "" || len(name) > 63 || strings.ContainsAny(name, "/ @,\t\n") {
		return rest.BadRequest("cluster group name %q: 1 to 63 characters, no '/', '@', ',' or spaces", name)
	}
	return nil
}

// postGroup is POST /1.0/cluster/groups: a new group, with members given (each moves out
// of "default" if it was there only by default).
func (s *Service) postGroup(w http.ResponseWriter, r *http.Request) error {
	var g api.ClusterGroup
	if err := rest.DecodeBody(r, &g); err != nil {
		return err
	}
	if err := checkGroupName(g.Name); err != nil {
		return err
	}
	groups, byMember, err := s.groupsOf(r.Context(), true)
	if err != nil {
		return err
	}
	if _, ok := groups[g.Name]; ok {
		return rest.Conflict("cluster group %q already exists", g.Name)
	}
	if err := knownMembers(byMember, g.Members); err != nil {
		return err
	}
	stmts := []store.Statement{db.Stmt(`INSERT INTO cluster_groups(name, description) VALUES(?, ?)`, g.Name, g.Description)}
	stmts = append(stmts, s.setMembers(g.Name, nil, g.Members, byMember)...)
	if _, err := s.db.Exec(r.Context(), stmts...); err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return rest.Conflict("cluster group %q already exists", g.Name)
		}
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// putGroup is PUT and PATCH /1.0/cluster/groups/{name}: description and members (PUT
// replaces both; PATCH keeps the members when the body has none). A member left in no
// group is refused, naming it.
func (s *Service) putGroup(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	g, byMember, err := s.group(r.Context(), name)
	if err != nil {
		return err
	}
	if err := rest.CheckIfMatch(r, groupWritable(g)); err != nil {
		return err
	}
	var put api.ClusterGroupPut
	if r.Method == http.MethodPatch {
		put = api.ClusterGroupPut{Description: g.Description, Members: g.Members}
	}
	if err := rest.DecodeBody(r, &put); err != nil {
		return err
	}
	if err := knownMembers(byMember, put.Members); err != nil {
		return err
	}
	for _, m := range g.Members {
		if !slices.Contains(put.Members, m) && len(byMember[m]) == 1 {
			return rest.BadRequest("member %s would be in no cluster group (add it to another first)", m)
		}
	}
	stmts := []store.Statement{db.Stmt(`UPDATE cluster_groups SET description = ? WHERE name = ?`, put.Description, name)}
	stmts = append(stmts, s.setMembers(name, g.Members, put.Members, byMember)...)
	if _, err := s.db.Exec(r.Context(), stmts...); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// knownMembers refuses a member name the cluster does not have.
func knownMembers(byMember map[string][]string, names []string) error {
	for _, m := range names {
		if _, ok := byMember[m]; !ok {
			return rest.BadRequest("members: no member named %q", m)
		}
	}
	return nil
}

// setMembers are the statements that make group's members next (it had cur). A member
// added keeps the groups it had ("default" included, as LXD's), one removed keeps the others.
func (s *Service) setMembers(group string, cur, next []string, byMember map[string][]string) []store.Statement {
	var out []store.Statement
	mid := `(SELECT id FROM members WHERE name = ?)`
	addRow := func(g, m string) store.Statement {
		return db.Stmt(`INSERT OR IGNORE INTO cluster_groups_members(group_id, member_id)
			VALUES((SELECT id FROM cluster_groups WHERE name = ?), `+mid+`)`, g, m)
	}
	for _, m := range cur {
		if slices.Contains(next, m) {
			continue
		}
		if left := slices.DeleteFunc(slices.Clone(byMember[m]), func(g string) bool { return g == group }); len(left) > 0 {
			out = append(out, pinGroups(m, left)...)
		} else {
			out = append(out, db.Stmt(`DELETE FROM cluster_groups_members WHERE member_id = `+mid+`
				AND group_id = (SELECT id FROM cluster_groups WHERE name = ?)`, m, group))
		}
	}
	for _, m := range next {
		if slices.Contains(cur, m) {
			continue
		}
		out = append(out, addRow(group, m))
		if slices.Contains(byMember[m], defaultGroup) { // stays in default, as LXD's members
			out = append(out, addRow(defaultGroup, m))
		}
	}
	return out
}

// pinGroups records groups as member's group rows (so that "default" held by default
// stays once the member is also in another group, or is dropped from it explicitly).
func pinGroups(member string, groups []string) []store.Statement {
	mid := `(SELECT id FROM members WHERE name = ?)`
	out := []store.Statement{db.Stmt(`DELETE FROM cluster_groups_members WHERE member_id = `+mid, member)}
	for _, g := range groups {
		out = append(out, db.Stmt(`INSERT INTO cluster_groups_members(group_id, member_id)
			VALUES((SELECT id FROM cluster_groups WHERE name = ?), `+mid+`)`, g, member))
	}
	return out
}

// renameGroup is POST /1.0/cluster/groups/{name}: a new name ("default" keeps its own).
func (s *Service) renameGroup(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	var post api.ClusterGroupPost
	if err := rest.DecodeBody(r, &post); err != nil {
		return err
	}
	if name == defaultGroup {
		return rest.BadRequest("the default cluster group cannot be renamed")
	}
	if err := checkGroupName(post.Name); err != nil {
		return err
	}
	_, err = s.db.Exec(r.Context(), store.Statement{SQL: `UPDATE cluster_groups SET name = ? WHERE name = ?`,
		Args: []any{post.Name, name}, Expect: store.Int64(1)})
	switch {
	case err != nil && strings.Contains(err.Error(), "UNIQUE"):
		return rest.Conflict("cluster group %q already exists", post.Name)
	case rest.IsConflict(err):
		return rest.NotFound("no cluster group named %q", name)
	case err != nil:
		return err
	}
	w.Header().Set("Location", "/1.0/cluster/groups/"+url.PathEscape(post.Name))
	return rest.WriteOK(w, nil, "")
}

// deleteGroup is DELETE /1.0/cluster/groups/{name}: only an empty group, never "default".
func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	if name == defaultGroup {
		return rest.BadRequest("the default cluster group cannot be deleted")
	}
	g, _, err := s.group(r.Context(), name)
	if err != nil {
		return err
	}
	if len(g.Members) > 0 {
		return rest.Conflict("cluster group %q still has members (%s): only an empty group can be deleted", name, strings.Join(g.Members, ", "))
	}
	// One statement: a member added meanwhile keeps the group.
	_, err = s.db.Exec(r.Context(), store.Statement{SQL: `DELETE FROM cluster_groups WHERE name = ?
		AND NOT EXISTS (SELECT 1 FROM cluster_groups_members gm JOIN cluster_groups g ON g.id = gm.group_id WHERE g.name = ?)`,
		Args: []any{name, name}, Expect: store.Int64(1)})
	if rest.IsConflict(err) {
		return rest.Conflict("cluster group %q is not empty or is gone", name)
	}
	if err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// memberGroups are the statements that make a member's groups exactly groups (a member
// PUT); each must exist, and there must be one at least.
func (s *Service) memberGroups(ctx context.Context, member string, groups []string) ([]store.Statement, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	all, _, err := s.groupsOf(ctx, true)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if _, ok := all[g]; !ok {
			return nil, rest.BadRequest("groups: no cluster group named %q", g)
		}
	}
	return pinGroups(member, slices.Compact(slices.Sorted(slices.Values(groups)))), nil
}
