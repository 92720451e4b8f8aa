package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"orch/nodeagent/daemon/events"
	"orch/nodeagent/daemon/metrics"
	"orch/nodeagent/daemon/operations"
	"orch/nodeagent/daemon/rest"

	"orch/modules/storage"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/entity"
	"orch/nodeagent/daemon/images"
	"orch/nodeagent/daemon/instances"
	"orch/nodeagent/daemon/memberinfo"
	"orch/nodeagent/daemon/serverconfig"
	"orch/nodeagent/daemon/tokens"
	"orch/nodeagent/daemon/trust"
	"orch/nodeagent/daemon/upgrade"
	"orch/nodeagent/store"
	"orch/nodeagent/version"
)

// The daemon is the composition root of its domains (DESIGN.md): it builds each domain
// service and hands it the small interfaces the domain declares, implemented here over the
// daemon's database, membership, peers and routes.

// wireDomains builds the domain services.
func (d *Daemon) wireDomains() {
	d.events = events.New(events.Deps{Members: memberAccess{d}, Peers: peerAccess{d}, Now: d.now, Log: d.log})
	d.log = slog.New(d.events.Tee(d.log.Handler())) // the domains' and membership's lines are logging events too
	d.ops = operations.New(operations.Deps{Members: memberAccess{d}, Peers: peerAccess{d}, Events: d.events, Now: d.now, Log: d.log, Keep: d.local})
	d.imgs = images.New(images.Deps{
		DB: dbAccess{d}, Members: memberAccess{d}, Config: memberAccess{d}, Peers: peerAccess{d},
		Open: d.imageStore, Ops: d.ops, Events: d.events, Log: d.log,
	})
	d.ents = entity.New(entity.Deps{
		DB: dbAccess{d}, Members: memberAccess{d}, Peers: peerAccess{d}, Dir: d.cfg.Dir, Log: d.log,
	})
	d.insts = instances.New(instances.Deps{
		DB: dbAccess{d}, Members: memberAccess{d}, Peers: peerAccess{d}, Images: d.imgs,
		Entities: entityAccess{d}, Drivers: d.drivers, Ops: d.ops, Events: d.events, Log: d.log,
		Usage: metrics.Host{Proc: "/proc"},
		Group: func(ctx context.Context, name string) ([]string, bool, error) { return d.infos.GroupMembers(ctx, name) },
	})
	d.conf = serverconfig.New(serverconfig.Deps{DB: dbAccess{d}, Local: d.local, Member: configMember{d}, Lock: &d.mu})
	d.migrator = upgrade.NewMigrator(dbAccess{d}, upgradeCluster{d}, d.log)
	d.infos = memberinfo.New(dbAccess{d}, configMember{d}, d.log)
	d.tokens = tokens.New(tokens.Deps{
		DB: dbAccess{d}, Members: memberAccess{d}, Config: memberAccess{d}, Cluster: clusterCert{d},
		Now: d.now, CheckName: checkMemberName, Ops: d.ops, Events: d.events,
	})
	d.trust = trust.New(trust.Deps{
		DB: dbAccess{d}, Members: memberAccess{d}, Peers: peerAccess{d}, Callers: callerAccess{d}, Log: d.log,
		Ops: d.ops, ClusterFingerprint: clusterCert{d}.Fingerprint, Config: memberAccess{d}, Now: d.now,
	})
	d.metrics = newMetrics(d)
}

// dbAccess is the replicated database as domains see it.
type dbAccess struct{ d *Daemon }

// Query is a linearizable read (Daemon.query).
func (a dbAccess) Query(ctx context.Context, sql string, args ...any) (db.Rows, error) {
	return a.d.query(ctx, sql, args...)
}

// Exec is an atomic write through raft (Daemon.exec).
func (a dbAccess) Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error) {
	return a.d.exec(ctx, stmts...)
}

// Fresh waits until this member's replica is linearizable (serve.Server.Fresh).
func (a dbAccess) Fresh(ctx context.Context) (db.Replica, error) { return a.d.srv.Fresh(ctx) }

// QueryLocal reads this member's replica without any consistency check.
func (a dbAccess) QueryLocal(ctx context.Context, sql string, args ...any) (db.Rows, error) {
	return a.d.queryLocal(ctx, sql, args...)
}

// Applied is the replica's last applied index; err says why there is no database.
func (a dbAccess) Applied() (uint64, error) {
	st := a.d.store()
	if st == nil {
		return 0, a.d.noStore()
	}
	return st.AppliedIndex(), nil
}

// memberAccess is the membership as domains see it.
type memberAccess struct{ d *Daemon }

// Self is this member's name.
func (a memberAccess) Self() string { return a.d.memberName() }

// All are the members, read linearizably.
func (a memberAccess) All(ctx context.Context) ([]db.Member, error) {
	ms, err := a.d.members(ctx)
	return dbMembers(ms), err
}

// Online are the members ONLINE by the leader's clock.
func (a memberAccess) Online(ctx context.Context) ([]db.Member, error) {
	ms, err := a.d.onlineMembers(ctx)
	return dbMembers(ms), err
}

// Local are the members as this member's replica has them.
func (a memberAccess) Local(ctx context.Context) ([]db.Member, error) {
	ms, err := a.d.membersLocal(ctx)
	return dbMembers(ms), err
}

// RequireOnline fails, naming them, when a named member (any, when none is named) is
// OFFLINE (Daemon.requireOnline).
func (a memberAccess) RequireOnline(ctx context.Context, names ...string) error {
	return a.d.requireOnline(ctx, names...)
}

// IsLeader reports whether this member is the raft leader.
func (a memberAccess) IsLeader() bool { return a.d.store().IsLeader() }

// GlobalConfig is the cluster-wide configuration, defaults applied.
func (a memberAccess) GlobalConfig(ctx context.Context) (map[string]string, error) {
	return a.d.globalConfig(ctx)
}

func dbMembers(ms []memberRow) []db.Member {
	out := make([]db.Member, len(ms))
	for i, m := range ms {
		out[i] = db.Member{Name: m.name, Address: m.address}
	}
	return out
}

// peerAccess is the other members' internal API as domains see it.
type peerAccess struct{ d *Daemon }

// Post sends one request (first hop) to the member at addr.
func (a peerAccess) Post(ctx context.Context, addr, path string, body, out any) error {
	return a.d.srv.Post(ctx, addr, path, body, out, 1)
}

// Client is the pooled client of the member at addr.
func (a peerAccess) Client(addr string) (*api.Client, error) { return a.d.srv.Client(addr) }

// entityAccess is the entity domain as instances see it.
type entityAccess struct{ d *Daemon }

// Pool reads the storage pool name.
func (a entityAccess) Pool(ctx context.Context, name string) (instances.Entity, bool, error) {
	return a.d.ents.Pool(ctx, name)
}

// Network reads the network name.
func (a entityAccess) Network(ctx context.Context, name string) (instances.Entity, bool, error) {
	return a.d.ents.Network(ctx, name)
}

// PoolDriver is this member's driver of pool, which Pool returned.
func (a entityAccess) PoolDriver(pool instances.Entity) (storage.Driver, storage.Pool, error) {
	return a.d.ents.PoolDriver(pool.(entity.Row))
}

// configMember is this member as the server configuration sees it.
type configMember struct{ d *Daemon }

// Self is this member's name.
func (a configMember) Self() string { return a.d.memberName() }

// ClusterAddress is this member's cluster.https_address.
func (a configMember) ClusterAddress() string { return a.d.clusterAddress() }

// Clustered reports whether the cluster database is open.
func (a configMember) Clustered() bool { return a.d.store() != nil }

// LocalChanged moves the client listener after a member-local change, once the member's
// network runs or before it is initialised.
func (a configMember) LocalChanged() error {
	if err := a.d.reconcileDebug(); err != nil {
		return fmt.Errorf("core.debug_address: %w", err)
	}
	if a.d.srv.Mux() != nil || a.d.memberName() == "" {
		return a.d.srv.ReconcileClientListener()
	}
	return nil
}

// upgradeCluster is the membership as a schema migration sees it.
type upgradeCluster struct{ d *Daemon }

// Leader reports whether this member has the database open and leads.
func (a upgradeCluster) Leader() bool {
	st := a.d.store()
	return st != nil && st.IsLeader()
}

// Versions are the members' versions from the local replica, in id order.
func (a upgradeCluster) Versions(ctx context.Context) ([]version.Info, error) {
	ms, err := a.d.membersLocal(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]version.Info, len(ms))
	for i, m := range ms {
		out[i] = m.ver
	}
	return out, nil
}

// clusterCert is the cluster certificate of a member (set once it is initialised).
type clusterCert struct{ d *Daemon }

// Fingerprint is the cluster certificate's fingerprint.
func (a clusterCert) Fingerprint() string { return a.d.cluster.Load().fingerprint }

// callerAccess classifies requests for domains (Daemon.callerOf).
type callerAccess struct{ d *Daemon }

// Caller is who sent r.
func (a callerAccess) Caller(r *http.Request) trust.Caller {
	c := a.d.srv.CallerOf(r)
	return trust.Caller{Fingerprint: c.FP, Trusted: c.Trusted}
}

// restoreTokens starts again the join and certificate-add tokens this member issued before
// it restarted (its local database keeps them): a token handed out still works, and is
// listed and revocable with LXD's client, which finds tokens among the operations.
func (d *Daemon) restoreTokens() {
	kept, err := d.local.Tokens()
	if err != nil {
		d.log.Warn("reading the tokens this member issued", "err", err)
		return
	}
	rebuild := func(kind string, meta map[string]any, expires time.Time) (rest.Task, bool) {
		switch kind {
		case tokens.KeptJoinToken:
			return d.tokens.Rebuild(meta)
		case trust.KeptCertificateToken:
			return d.trust.Rebuild(meta, expires)
		}
		return rest.Task{}, false
	}
	for id, saved := range kept {
		if err := d.ops.Restore(id, saved, rebuild); err != nil {
			d.log.Warn("restoring a token this member issued", "operation", id, "err", err)
		}
	}
}
