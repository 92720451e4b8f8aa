package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
	"orch/nodeagent/config"
	"orch/nodeagent/daemon/serverconfig"
	"orch/nodeagent/daemon/upgrade"
	"orch/nodeagent/localdb"
	"orch/nodeagent/schema"
	"orch/nodeagent/store"
)

// Known drivers and network types: the preseed is refused when it names another.
var (
	poolDrivers  = map[string]bool{"dir": true, "btrfs": true, "lvm": true, "zfs": true}
	networkTypes = map[string]bool{"bridge": true}
)

// postInit is `nodeagent init`: bootstrap a new cluster or join an existing one from a
// preseed. It returns once this member holds its final role and is online, or fails having
// changed nothing.
func (d *Daemon) postInit(w http.ResponseWriter, r *http.Request) error {
	var req api.InitPost
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := req.Preseed
	if err := checkPreseedShape(&p); err != nil {
		return badRequest("%v", err)
	}
	if d.memberName() != "" {
		if joining := p.Cluster.ClusterAddress != "" || p.Cluster.ClusterToken != ""; !joining || !req.Wipe {
			if joining {
				return ErrHasData
			}
			return ErrInitialised
		}
		if err := d.wipe(); err != nil {
			return fmt.Errorf("wiping the agent directory: %w", err)
		}
	}
	var err error
	if p.Cluster.ClusterAddress != "" || p.Cluster.ClusterToken != "" {
		err = d.join(r.Context(), p)
	} else {
		err = d.bootstrap(r.Context(), p)
	}
	if err != nil {
		return err
	}
	return writeOK(w, nil, "")
}

// checkPreseedShape checks what does not need the cluster: names, drivers, types.
func checkPreseedShape(p *api.Preseed) error {
	if p.Cluster == nil || !p.Cluster.Enabled {
		return errors.New("cluster.enabled must be true: nodeagent always runs as a cluster member (a single-member cluster is fine)")
	}
	if p.Cluster.ServerName == "" {
		h, err := os.Hostname()
		if err != nil {
			return errors.New("cluster.server_name is required")
		}
		p.Cluster.ServerName = h
	}
	if err := checkMemberName(p.Cluster.ServerName); err != nil {
		return err
	}
	for _, sp := range p.StoragePools {
		if !poolDrivers[sp.Driver] {
			return fmt.Errorf("storage_pools: pool %q: unknown driver %q (dir, btrfs, lvm, zfs)", sp.Name, sp.Driver)
		}
	}
	for i := range p.Networks {
		if p.Networks[i].Type == "" {
			p.Networks[i].Type = "bridge"
		}
		if !networkTypes[p.Networks[i].Type] {
			return fmt.Errorf("networks: network %q: unknown type %q (bridge)", p.Networks[i].Name, p.Networks[i].Type)
		}
	}
	return nil
}

func checkMemberName(n string) error {
	if n == "" || len(n) > 63 || strings.ContainsAny(n, " /\\:\t\n\x00") {
		return fmt.Errorf("cluster.server_name %q is not a valid member name (1-63 characters, no spaces, '/' or ':')", n)
	}
	return nil
}

// preseedAddresses validates the preseed's config and returns the global part (secrets
// hashed), the member-local part, and this member's cluster address.
func (d *Daemon) preseedAddresses(p api.Preseed, serverAddress string) (global, local map[string]string, clusterAddr string, err error) {
	global, local, err = serverconfig.Split(p.Config)
	if err != nil {
		return nil, nil, "", badRequest("config: %v", err)
	}
	if err := config.CheckRaftTimings(global); err != nil {
		return nil, nil, "", badRequest("config: %v", err)
	}
	existing, _ := d.local.Config()
	for _, k := range []string{"core.https_address", "cluster.https_address"} {
		if _, ok := local[k]; !ok && existing[k] != "" {
			local[k] = existing[k]
		}
	}
	if serverAddress != "" {
		a, err := config.NormaliseAddress(serverAddress, false)
		if err != nil {
			return nil, nil, "", badRequest("cluster.server_address: %v", err)
		}
		for _, k := range []string{"core.https_address", "cluster.https_address"} {
			if local[k] == "" {
				local[k] = a
			}
		}
	}
	clusterAddr = local["cluster.https_address"]
	if clusterAddr == "" {
		clusterAddr = local["core.https_address"]
	}
	if clusterAddr == "" {
		return nil, nil, "", badRequest("no address for this member: set core.https_address or cluster.https_address (or cluster.server_address when joining)")
	}
	if clusterAddr, err = config.NormaliseAddress(clusterAddr, false); err != nil {
		return nil, nil, "", badRequest("cluster address: %v", err)
	}
	local["cluster.https_address"] = clusterAddr
	return global, local, clusterAddr, nil
}

// bootstrap makes this member the first member of a new cluster.
func (d *Daemon) bootstrap(ctx context.Context, p api.Preseed) (err error) {
	global, local, addr, err := d.preseedAddresses(p, p.Cluster.ServerAddress)
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	kp, err := pki.Generate("orch cluster", pki.ClusterDNSName, host)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			d.undoMember()
		}
	}()
	// Raft starts with the preseed's timings, the leader lease included (fixed at start).
	local[localdb.KeyRaftTimings] = formatRaftTimings(clusterTimings(global))
	if err := d.becomeMember(kp, p.Cluster.ServerName, local); err != nil {
		return err
	}
	if err := d.store().Bootstrap(ctx); err != nil {
		return fmt.Errorf("bootstrapping the database: %w", err)
	}
	if _, err := d.exec(ctx, upgrade.SchemaStatements(0, schema.Latest())...); err != nil {
		return fmt.Errorf("creating the schema: %w", err)
	}
	now := d.now().UnixMilli()
	stmts := []store.Statement{{
		SQL:  `INSERT INTO members(name, address, client_address, version, schema, api_level, heartbeat, joined_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)`,
		Args: []any{p.Cluster.ServerName, addr, local["core.https_address"], d.version.Version, int64(d.version.Schema), int64(d.version.APILevel), now, now},
	}}
	stmts = append(stmts, serverconfig.Statements(global)...)
	stmts = append(stmts, preseedStatements(p, p.Cluster.ServerName, p.Cluster.MemberConfig)...)
	if _, err := d.exec(ctx, stmts...); err != nil {
		return fmt.Errorf("recording the preseed: %w", err)
	}
	return d.finishMember(ctx)
}

// becomeMember saves the cluster identity (DIR/cluster.crt, and DIR/server.crt as LXD
// does) and member-local settings, opens the network and the database. Undone by
// undoMember.
func (d *Daemon) becomeMember(kp pki.KeyPair, name string, local map[string]string) error {
	cid, err := newClusterIdentity(kp)
	if err != nil {
		return err
	}
	if err := kp.Save(d.cfg.Dir, clusterCertBase); err != nil {
		return err
	}
	if err := d.serverIsCluster(kp); err != nil {
		return err
	}
	if err := d.local.Set(local); err != nil {
		return err
	}
	if err := d.reconcileDebug(); err != nil {
		d.log.Warn("core.debug_address: not serving pprof", "err", err)
	}
	d.cluster.Store(cid)
	d.setName(name)
	if err := d.srv.StartNetwork(); err != nil {
		return err
	}
	return d.openStore()
}

// finishMember records the membership in the node-local database: from now on a restart
// resumes it.
func (d *Daemon) finishMember(ctx context.Context) error {
	cid := d.cluster.Load()
	if err := d.local.Set(map[string]string{localdb.KeyMemberName: d.memberName(), localdb.KeyClusterID: cid.fingerprint}); err != nil {
		return err
	}
	d.startLoops()
	d.ents.AfterInit(ctx)
	return nil
}

// undoMember reverts becomeMember after a failed bootstrap or join.
// The member's own certificate replaces the cluster's, and the cluster's files go, before
// the member stops reporting itself initialised: whoever sees it reset never sees it with
// the cluster's identity.
func (d *Daemon) undoMember() {
	d.stopMember()
	d.cluster.Store(nil)
	if err := d.newServerPair(); err != nil {
		d.log.Error("the member left its cluster but still presents the cluster certificate", "err", err)
	}
	_ = os.RemoveAll(d.storeDir())
	for _, f := range []string{clusterCertBase + ".crt", clusterCertBase + ".key"} {
		_ = os.Remove(filepath.Join(d.cfg.Dir, f))
	}
	d.setName("")
	_ = d.local.Set(map[string]string{localdb.KeyMemberName: "", localdb.KeyClusterID: "", "cluster.https_address": "",
		localdb.KeyEpoch: "", localdb.KeyCutOff: "", localdb.KeyRecovered: "", localdb.KeyRaftTimings: ""})
	d.fence.Reset()
	_ = d.local.SetRaftNodes(nil)
	_ = d.local.SetLastIndexTerm(0, 0)
}

// wipe drops this member's cluster state so it can join another cluster.
func (d *Daemon) wipe() error {
	d.undoMember()
	return nil
}
