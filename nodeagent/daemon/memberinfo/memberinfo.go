// Package memberinfo owns what `cluster list` shows of a member besides its address,
// roles and state, as LXD: its architecture, which each member records from its own kernel
// once it is a member, and the failure domain and description `cluster edit` sets (PUT or
// PATCH /1.0/cluster/members/NAME). The database and this member are the daemon's, reached
// through the small interfaces of this file.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package memberinfo

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Database is the replicated database as member information uses it.
type Database interface {
	// Query is a linearizable read.
	Query(ctx context.Context, sql string, args ...any) (db.Rows, error)
	// QueryLocal reads this member's replica without any consistency check.
	QueryLocal(ctx context.Context, sql string, args ...any) (db.Rows, error)
	// Exec is an atomic write through raft.
	Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error)
}

// Member is this member.
type Member interface {
	// Self is this member's name.
	Self() string
	// Clustered reports whether it has the cluster database open.
	Clustered() bool
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
	OnLeader(h rest.HandlerFunc) rest.HandlerFunc
}

// Service is the member information of one member.
type Service struct {
	db     Database
	member Member
	log    *slog.Logger
}

// New builds the member information service.
func New(d Database, m Member, log *slog.Logger) *Service {
	return &Service{db: d, member: m, log: log}
}

// Routes registers PUT and PATCH /1.0/cluster/members/{name} (leader only) and the
// cluster groups (groups.go).
func (s *Service) Routes(m Router) {
	m.Handle("PUT /1.0/cluster/members/{name}", rest.Trusted, m.OnLeader(s.putMember))
	m.Handle("PATCH /1.0/cluster/members/{name}", rest.Trusted, m.OnLeader(s.putMember))
	s.groupRoutes(m)
}

// Add fills the descriptive fields of views (see addMemberInfo).
func (s *Service) Add(ctx context.Context, views []api.ClusterMember) error {
	return s.addMemberInfo(ctx, views)
}

// ArchitectureLoop records this member's architecture in its row once the row exists (see
// architectureLoop).
func (s *Service) ArchitectureLoop(ctx context.Context) { s.architectureLoop(ctx) }

// defaultFailureDomain is LXD's name for the domain of a member nobody placed.
const defaultFailureDomain = "default"

// memberInfo is the descriptive part of a member's row.
type memberInfo struct {
	architecture, failureDomain, description string
}

// memberInfos reads every member's descriptive columns from the local replica (callers
// have just read the members linearizably).
func (s *Service) memberInfos(ctx context.Context) (map[string]memberInfo, error) {
	rows, err := s.db.QueryLocal(ctx, `SELECT name, architecture, failure_domain, description FROM members`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]memberInfo, len(rows))
	for _, r := range rows {
		out[db.Str(r[0])] = memberInfo{architecture: db.Str(r[1]), failureDomain: db.Str(r[2]), description: db.Str(r[3])}
	}
	return out, nil
}

// addMemberInfo fills the descriptive fields of views. A database without the columns
// (written by a build before them: they joined the first schema update, nothing being
// released) leaves the fields empty rather than failing `cluster list`.
func (s *Service) addMemberInfo(ctx context.Context, views []api.ClusterMember) error {
	infos, err := s.memberInfos(ctx)
	if err != nil {
		s.log.Warn("members' architecture, failure domain and description unreadable", "err", err)
		return nil
	}
	for i := range views {
		in := infos[views[i].ServerName]
		views[i].Architecture, views[i].FailureDomain, views[i].Description = in.architecture, in.failureDomain, in.description
	}
	_, byMember, err := s.groupsOf(ctx, true)
	if err != nil {
		s.log.Warn("members' cluster groups unreadable", "err", err)
		return nil
	}
	for i := range views {
		if g := byMember[views[i].ServerName]; g != nil {
			views[i].Groups = g
		}
	}
	s.addEvacuated(ctx, views)
	return nil
}

// addEvacuated shows an ONLINE member evacuated for maintenance as EVACUATED (as LXD).
func (s *Service) addEvacuated(ctx context.Context, views []api.ClusterMember) {
	rows, err := s.db.QueryLocal(ctx, `SELECT name FROM members WHERE evacuated = 1`)
	if err != nil {
		return // a database from before the column: nobody is evacuated
	}
	for _, r := range rows {
		for i := range views {
			if views[i].ServerName == db.Str(r[0]) && views[i].Status == api.StatusOnline {
				views[i].Status, views[i].Message = api.StatusEvacuated, "Unavailable due to maintenance"
			}
		}
	}
}

// ETag is the entity tag of a member's editable part (its description, failure domain and
// groups; roles change without a PUT and are not part of it).
func ETag(m api.ClusterMember) string {
	return rest.ETag(memberWritable(m.Description, m.FailureDomain, m.Groups))
}

// memberWritable is what ETag hashes.
func memberWritable(description, failureDomain string, groups []string) any {
	return []any{description, failureDomain, groups}
}

// putMember is PUT and PATCH /1.0/cluster/members/{name}: set the description and failure
// domain (an empty failure domain is "default"); PATCH keeps what the body leaves out.
// If-Match is checked against ETag. Leader only.
func (s *Service) putMember(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	infos, err := s.memberInfos(r.Context())
	if err != nil {
		return err
	}
	cur, ok := infos[name]
	if !ok {
		return rest.NotFound("no member named %q", name)
	}
	_, byMember, err := s.groupsOf(r.Context(), true)
	if err != nil {
		return err
	}
	if err := rest.CheckIfMatch(r, memberWritable(cur.description, cur.failureDomain, byMember[name])); err != nil {
		return err
	}
	var put api.ClusterMemberPut
	if r.Method == http.MethodPatch {
		put = api.ClusterMemberPut{Description: cur.description, FailureDomain: cur.failureDomain, Groups: byMember[name]}
	}
	if err := rest.DecodeBody(r, &put); err != nil {
		return err
	}
	if err := checkMemberPut(put); err != nil {
		return err
	}
	if put.FailureDomain == "" {
		put.FailureDomain = defaultFailureDomain
	}
	if put.Groups != nil && len(put.Groups) == 0 {
		return rest.BadRequest("groups: member %s would be in no cluster group", name)
	}
	var groups []store.Statement
	if !slices.Equal(slices.Sorted(slices.Values(put.Groups)), byMember[name]) {
		if groups, err = s.memberGroups(r.Context(), name, put.Groups); err != nil {
			return err
		}
	}
	res, err := s.db.Exec(r.Context(), append([]store.Statement{db.Stmt(`UPDATE members SET description = ?, failure_domain = ? WHERE name = ?`,
		put.Description, put.FailureDomain, name)}, groups...)...)
	if err != nil {
		return err
	}
	if len(res) == 0 || res[0].RowsAffected == 0 {
		return rest.NotFound("no member named %q", name)
	}
	return rest.WriteOK(w, nil, "")
}

// checkMemberPut refuses what orch does not support in a member's PUT, naming the field:
// roles other than the database roles the cluster assigns itself, and config keys.
func checkMemberPut(put api.ClusterMemberPut) error {
	for _, role := range put.Roles {
		switch role {
		case api.RoleDatabase, api.RoleDatabaseLeader, api.RoleDatabaseStandby:
		default:
			return rest.BadRequest("roles: %q cannot be set (the cluster assigns the database roles itself)", role)
		}
	}
	for k := range put.Config {
		return rest.BadRequest("config: member key %q is not supported", k)
	}
	return nil
}

// machine is the kernel's architecture name (uname -m), as LXD reports it.
func machine() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// architectureLoop records this member's architecture in its row once the row exists
// (after bootstrap, join, or an upgrade from a build that did not record it), retrying
// each second until it has, then returns.
func (s *Service) architectureLoop(ctx context.Context) {
	arch := machine()
	if arch == "" {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if s.recordArchitecture(ctx, arch) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recordArchitecture writes arch into this member's row unless it is there already, and
// reports whether it is done: the row holds it, or the database has no such column (a
// database from a build before it), which retrying would not change.
func (s *Service) recordArchitecture(ctx context.Context, arch string) bool {
	if !s.member.Clustered() {
		return false
	}
	me := s.member.Self()
	rows, err := s.db.QueryLocal(ctx, `SELECT architecture FROM members WHERE name = ?`, me)
	if err != nil && strings.Contains(err.Error(), "no such column") {
		s.log.Warn("not recording this member's architecture", "err", err)
		return true
	}
	if err == nil && len(rows) > 0 && db.Str(rows[0][0]) == arch {
		return true
	}
	// Not there, or this replica cannot tell: a spare's replica holds nothing (it is not in
	// raft), a joiner's may not hold its row yet. The write goes through the leader, which
	// knows whether the row exists. (Waiting for the replica instead kept every spare of a
	// 200-member cluster polling its empty replica every second for ever.)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := s.db.Exec(wctx, db.Stmt(`UPDATE members SET architecture = ? WHERE name = ?`, arch, me))
	if err != nil && strings.Contains(err.Error(), "no such column") {
		s.log.Warn("not recording this member's architecture", "err", err)
		return true
	}
	return err == nil && len(res) == 1 && res[0].RowsAffected == 1
}
