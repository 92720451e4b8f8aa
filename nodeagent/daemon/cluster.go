package daemon

import (
	"context"
	"net/http"
	"sort"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/memberinfo"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/daemon/upgrade"
	"orch/nodeagent/store"
	"orch/nodeagent/version"
)

// getCluster is GET /1.0/cluster: this member's name and the node-specific keys a joining
// member must supply (member_config), as LXD returns them.
func (d *Daemon) getCluster(w http.ResponseWriter, r *http.Request) error {
	cl := api.Cluster{ServerName: d.memberName(), Enabled: d.memberName() != "", MemberConfig: []api.MemberConfigKey{}}
	if d.store() != nil {
		keys, err := d.memberConfigKeys(r.Context())
		if err != nil {
			return err
		}
		cl.MemberConfig = keys
	}
	return writeOK(w, cl, "")
}

// memberConfigKeys are the member-specific keys of the cluster's storage pools that a
// joining member supplies, with LXD's descriptions: source, size for the drivers that make
// a loop file, and the driver's own pool name.
func (d *Daemon) memberConfigKeys(ctx context.Context) ([]api.MemberConfigKey, error) {
	pools, _, err := d.clusterEntities(ctx)
	if err != nil {
		return nil, err
	}
	out := []api.MemberConfigKey{}
	for _, p := range pools {
		keys := []string{"source"}
		switch p.Driver {
		case "btrfs":
			keys = append(keys, "size")
		case "zfs":
			keys = append(keys, "size", "zfs.pool_name")
		case "lvm":
			keys = append(keys, "size", "lvm.vg_name")
		}
		for _, k := range keys {
			out = append(out, api.MemberConfigKey{Entity: entityPool, Name: p.Name, Key: k,
				Description: `"` + k + `" property for storage pool "` + p.Name + `"`})
		}
	}
	return out, nil
}

// putCluster is PUT /1.0/cluster: bootstrap or join this member, as the guide's last
// section does to join with a separate client address.
func (d *Daemon) putCluster(w http.ResponseWriter, r *http.Request) error {
	var put api.ClusterPut
	if err := decodeBody(r, &put); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.memberName() != "" {
		return ErrInitialised
	}
	p := api.Preseed{Cluster: &put}
	if err := checkPreseedShape(&p); err != nil {
		return badRequest("%v", err)
	}
	var err error
	if put.ClusterAddress != "" || put.ClusterToken != "" {
		err = d.join(r.Context(), p)
	} else {
		err = d.bootstrap(r.Context(), p)
	}
	if err != nil {
		return err
	}
	return writeOK(w, nil, "")
}

// memberViews builds the ClusterMember list. Leader only (it knows the raft roles).
func (d *Daemon) memberViews(ctx context.Context) ([]api.ClusterMember, error) {
	members, err := d.members(ctx)
	if err != nil {
		return nil, err
	}
	// The linearizable read above brought the replica up to date: the rest is read locally
	// (one read-index round trip per list rather than two).
	cfg, err := d.globalConfigLocal(ctx)
	if err != nil {
		return nil, err
	}
	servers, err := d.store().Servers()
	if err != nil {
		return nil, err
	}
	roles := currentRoles(servers)
	leader, _ := d.store().Leader()
	now := d.clusterNow()
	threshold := offlineThreshold(cfg)
	dbVersion, err := d.clusterVersionLocal(ctx)
	if err != nil {
		return nil, err
	}
	oldest := oldestCurrent(members, dbVersion)
	out := make([]api.ClusterMember, 0, len(members))
	for _, m := range members {
		v := api.ClusterMember{ServerName: m.name, URL: "https://" + m.address, Roles: []string{}, Config: map[string]string{}, Groups: []string{},
			Version: m.ver.Version, SchemaVersion: m.ver.Schema, APILevel: m.ver.APILevel, LastHeartbeat: m.heartbeat.UTC()}
		switch roles[m.name] {
		case roleVoter:
			v.Database = true
			if m.name == leader {
				v.Roles = append(v.Roles, api.RoleDatabaseLeader)
			}
			v.Roles = append(v.Roles, api.RoleDatabase)
		case roleStandby:
			v.Roles = append(v.Roles, api.RoleDatabaseStandby)
		}
		others := members
		if oldest != nil && version.Compare(m.ver, *oldest) <= 0 {
			others = nil // no member is older than this one: no need to look for which
		}
		v.Status, v.Message = memberStatus(m, others, now, threshold, dbVersion)
		out = append(out, v)
	}
	if err := d.infos.Add(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// oldestCurrent is the oldest version among members that are not behind the database (nil
// when there is none): only a member newer than it can be waiting for another's upgrade,
// so that listing 200 members of one version is not 200 x 200 comparisons.
func oldestCurrent(ms []memberRow, cluster version.Info) *version.Info {
	var oldest *version.Info
	for i := range ms {
		v := ms[i].ver
		if v.Schema == 0 || upgrade.Behind(v, cluster) {
			continue
		}
		if oldest == nil || version.Compare(v, *oldest) < 0 {
			oldest = &ms[i].ver
		}
	}
	return oldest
}

func (d *Daemon) getMembers(w http.ResponseWriter, r *http.Request) error {
	views, err := d.memberViews(r.Context())
	if err != nil {
		return err
	}
	return rest.WriteList(w, r, "/1.0/cluster/members", views, func(m api.ClusterMember) string { return m.ServerName })
}

func (d *Daemon) getMember(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r)
	if err != nil {
		return err
	}
	views, err := d.memberViews(r.Context())
	if err != nil {
		return err
	}
	for _, v := range views {
		if v.ServerName == name {
			return writeOK(w, v, memberinfo.ETag(v))
		}
	}
	return notFound("no member named %q", name)
}

// getDatabase is what `cluster list-database` shows while the daemon runs.
func (d *Daemon) getDatabase(w http.ResponseWriter, r *http.Request) error {
	info := api.DatabaseInfo{Member: d.memberName(), Members: []api.DatabaseMember{}, Running: true,
		Epoch: d.currentEpoch(), CutOff: d.cutOffState()}
	st := d.store()
	if st == nil && info.CutOff == nil {
		return d.noStore()
	}
	var servers []store.Server
	var err error
	if st != nil {
		servers, err = st.Servers()
	}
	if err == nil && len(servers) > 0 {
		for _, s := range servers {
			role := roleVoter
			if s.Suffrage != "voter" {
				role = roleStandby
			}
			info.Members = append(info.Members, api.DatabaseMember{Name: s.ID, Address: s.Address, Role: role})
		}
	} else if info.Members, err = d.local.RaftNodes(); err != nil {
		return err
	}
	sort.Slice(info.Members, func(i, j int) bool { return info.Members[i].Name < info.Members[j].Name })
	var pos store.Position
	if st != nil {
		pos, err = st.Position()
	} else {
		pos, err = store.Inspect(d.storeDir()) // cut off: the store is closed
	}
	if err != nil {
		return err
	}
	info.LastIndex, info.LastTerm = pos.AppliedIndex, pos.AppliedTerm
	info.LastLogIndex, info.LastLogTerm = pos.LastLogIndex, pos.LastLogTerm
	return writeOK(w, info, "")
}
