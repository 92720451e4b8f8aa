package daemon

import (
	"context"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"orch/nodeagent/api"
)

// What `cluster list` shows of a member besides its address, roles and state, as LXD:
// its architecture, which each member records from its own kernel once it is a member,
// and a failure domain and description that `cluster edit` sets (PUT or PATCH
// /1.0/cluster/members/NAME).

// defaultFailureDomain is LXD's name for the domain of a member nobody placed.
const defaultFailureDomain = "default"

// memberInfo is the descriptive part of a member's row.
type memberInfo struct {
	architecture, failureDomain, description string
}

// memberInfos reads every member's descriptive columns from the local replica (callers
// have just read the members linearizably).
func (d *Daemon) memberInfos(ctx context.Context) (map[string]memberInfo, error) {
	rows, err := d.queryLocal(ctx, `SELECT name, architecture, failure_domain, description FROM members`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]memberInfo, len(rows))
	for _, r := range rows {
		out[str(r[0])] = memberInfo{architecture: str(r[1]), failureDomain: str(r[2]), description: str(r[3])}
	}
	return out, nil
}

// addMemberInfo fills the descriptive fields of views. A database without the columns
// (written by a build before them: they joined the first schema update, nothing being
// released) leaves the fields empty rather than failing `cluster list`.
func (d *Daemon) addMemberInfo(ctx context.Context, views []api.ClusterMember) error {
	infos, err := d.memberInfos(ctx)
	if err != nil {
		d.log.Warn("members' architecture, failure domain and description unreadable", "err", err)
		return nil
	}
	for i := range views {
		in := infos[views[i].ServerName]
		views[i].Architecture, views[i].FailureDomain, views[i].Description = in.architecture, in.failureDomain, in.description
	}
	return nil
}

// putMember is PUT and PATCH /1.0/cluster/members/{name}: set the description and failure
// domain (an empty failure domain is "default"). Leader only.
func (d *Daemon) putMember(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	var put api.ClusterMemberPut
	if err := decodeBody(r, &put); err != nil {
		return err
	}
	if put.FailureDomain == "" {
		put.FailureDomain = defaultFailureDomain
	}
	res, err := d.exec(r.Context(), storeStmt(`UPDATE members SET description = ?, failure_domain = ? WHERE name = ?`,
		put.Description, put.FailureDomain, name))
	if err != nil {
		return err
	}
	if len(res) == 0 || res[0].RowsAffected == 0 {
		return notFound("no member named %q", name)
	}
	return writeOK(w, nil, "")
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
func (d *Daemon) architectureLoop(ctx context.Context) {
	arch := machine()
	if arch == "" {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if d.recordArchitecture(ctx, arch) {
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
func (d *Daemon) recordArchitecture(ctx context.Context, arch string) bool {
	if d.store() == nil {
		return false
	}
	me := d.memberName()
	rows, err := d.queryLocal(ctx, `SELECT architecture FROM members WHERE name = ?`, me)
	if err != nil && strings.Contains(err.Error(), "no such column") {
		d.log.Warn("not recording this member's architecture", "err", err)
		return true
	}
	if err != nil { // a joiner's replica may not hold the tables yet
		return false
	}
	if len(rows) == 0 {
		return false
	}
	if str(rows[0][0]) == arch {
		return true
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = d.exec(wctx, storeStmt(`UPDATE members SET architecture = ? WHERE name = ?`, arch, me))
	return err == nil
}
