package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/epoch"
	"orch/nodeagent/daemon/events"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/daemon/serve"
	"orch/nodeagent/store"
)

// Serving is daemon/serve (DESIGN.md): the listeners, the route table, access checks and
// forwarding. What it needs of membership is implemented here; the daemon's own routes
// (membership) are mounted by memberRoutes.

// access is what a route requires of its caller (rest.Access).
type access = rest.Access

const (
	public  = rest.Public  // anyone (the handler authenticates what it must)
	trusted = rest.Trusted // the local socket, a trusted client certificate or a member
	local   = rest.Local   // the local socket only
	member  = rest.Member  // another member (cluster certificate) or the local socket
)

// handlerFunc is a route's handler; a returned error becomes an LXD-style error response.
type handlerFunc = rest.HandlerFunc

// caller classifies the request's origin (serve.Caller).
type caller = serve.Caller

// Rows is a query result: one []any per row, values int64, float64, string or nil.
type Rows = db.Rows

// str and i64 read a column value of Rows.
func str(v any) string { return db.Str(v) }

func i64(v any) int64 { return db.I64(v) }

// storeStmt builds one statement.
func storeStmt(sql string, args ...any) store.Statement { return db.Stmt(sql, args...) }

// writeOK writes a sync success response with metadata (may be nil) and an optional ETag.
func writeOK(w http.ResponseWriter, meta any, etag string) error {
	return rest.WriteOK(w, meta, etag)
}

// decodeBody reads a JSON request body into v, rejecting unknown fields.
func decodeBody(r *http.Request, v any) error { return rest.DecodeBody(r, v) }

// badRequest, notFound, conflict and unavailable are the rest package's API errors.
var (
	badRequest  = rest.BadRequest
	notFound    = rest.NotFound
	conflict    = rest.Conflict
	unavailable = rest.Unavailable
)

// pathName returns the {name} path value, refusing empty and odd names.
func pathName(r *http.Request) (string, error) { return rest.PathName(r) }

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// conflicts are the daemon's errors answered 409 Conflict.
var conflicts = []error{ErrInitialised, ErrHasData}

// newServer builds the serving layer over this daemon's membership.
func (d *Daemon) newServer() *serve.Server {
	return serve.New(serve.Deps{
		Members: servedMember{d}, Certs: servedMember{d}, Gate: servedMember{d},
		Fence: d.fence, Trust: d.trust, Log: d.log,
		AnswerHeaders: []string{epoch.CutOffHeader, epoch.CutOffTarget, events.SentHeader},
		Conflicts:     conflicts,
		Domains: []serve.Domain{
			func(r serve.Router) { d.memberRoutes(d.lifecycle(r)) },
			func(r serve.Router) { d.conf.Routes(d.lifecycle(r)) },
			func(r serve.Router) { d.tokens.Routes(d.lifecycle(r)) },
			func(r serve.Router) { d.infos.Routes(d.lifecycle(r)) },
			func(r serve.Router) { d.trust.Routes(d.lifecycle(r)) },
			d.joinRoutes,
			func(r serve.Router) { d.ents.Routes(d.lifecycle(r)) },
			func(r serve.Router) { d.insts.Routes(d.lifecycle(r)) },
			func(r serve.Router) { d.imgs.Routes(d.lifecycle(r)) },
			func(r serve.Router) { d.ops.Routes(r) },
			func(r serve.Router) { d.events.Routes(r) },
			d.projectRoutes,
			func(r serve.Router) { d.metrics.Routes(r) },
		},
	})
}

// lifecycleRouter mounts a domain's routes so that their successes send lifecycle events
// (events.Hub.Wrap).
type lifecycleRouter struct {
	serve.Router
	hub *events.Hub
}

// Handle registers h wrapped by the hub.
func (l lifecycleRouter) Handle(pattern string, need rest.Access, h rest.HandlerFunc) {
	l.Router.Handle(pattern, need, l.hub.Wrap(pattern, h))
}

// lifecycle is r sending lifecycle events.
func (d *Daemon) lifecycle(r serve.Router) lifecycleRouter {
	return lifecycleRouter{Router: r, hub: d.events}
}

// memberRoutes are membership's client routes: status, the cluster and its members.
func (d *Daemon) memberRoutes(m lifecycleRouter) {
	m.Handle("GET /1.0", public, d.getServer)
	m.Handle("GET /1.0/cluster", trusted, d.getCluster)
	m.Handle("PUT /1.0/cluster", trusted, d.putCluster)
	m.Handle("GET /1.0/cluster/members", trusted, d.srv.OnLeader(d.getMembers))
	m.Handle("GET /1.0/cluster/members/{name}", trusted, d.srv.OnLeader(d.getMember))
	m.Handle("DELETE /1.0/cluster/members/{name}", trusted, d.srv.OnLeader(d.deleteMember))
}

// joinRoutes are membership's internal routes: init, join, removal, heartbeats.
func (d *Daemon) joinRoutes(m serve.Router) {
	m.Handle("POST /internal/init", local, d.postInit)
	m.Handle("GET /internal/database", local, d.getDatabase)
	m.Handle("POST /internal/cluster/accept", public, d.acceptRoute)
	m.Handle("POST /internal/cluster/join-info", public, d.srv.OnLeader(d.postJoinInfo))
	m.Handle("POST /internal/cluster/complete", member, d.srv.OnLeader(d.postComplete))
	m.Handle("POST /internal/cluster/abort", member, d.srv.OnLeader(d.postAbort))
	m.Handle("POST /internal/cluster/removed", member, d.postRemoved)
	m.Handle("GET /internal/cluster/state", member, d.getPeerState)
	m.Handle("POST /internal/cluster/handover", member, d.srv.OnLeader(d.postHandover))
	m.Handle("POST /internal/heartbeat", member, d.postHeartbeat)
	m.Handle("POST /internal/announce", member, d.srv.OnLeader(d.refuseRemoved(d.postAnnounce)))
}

// exec, query and queryLocal are the database access (serve.Server).
func (d *Daemon) exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error) {
	return d.srv.Exec(ctx, stmts...)
}

func (d *Daemon) query(ctx context.Context, sql string, args ...any) (Rows, error) {
	return d.srv.Query(ctx, sql, args...)
}

func (d *Daemon) queryLocal(ctx context.Context, sql string, args ...any) (Rows, error) {
	return d.srv.QueryLocal(ctx, sql, args...)
}

// servedMember is this member as the serving layer sees it.
type servedMember struct{ d *Daemon }

// Name is this member's name, "" before init.
func (m servedMember) Name() string { return m.d.memberName() }

// ClusterAddress is this member's cluster.https_address.
func (m servedMember) ClusterAddress() string { return m.d.clusterAddress() }

// ClientAddress is this member's core.https_address.
func (m servedMember) ClientAddress() string {
	v, _ := m.d.local.Get("core.https_address")
	return v
}

// Store is the open cluster database, nil when there is none.
func (m servedMember) Store() *store.Store { return m.d.store() }

// NoStore is why Store is nil (Daemon.noStore).
func (m servedMember) NoStore() error { return m.d.noStore() }

// LeaderHint is the last leader a heartbeat announced.
func (m servedMember) LeaderHint() string { return m.d.health.leaderHint() }

// DatabaseAddresses are the database members recorded in the node-local database.
func (m servedMember) DatabaseAddresses() []string {
	nodes, _ := m.d.local.RaftNodes()
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Address
	}
	return out
}

// CutOff is why this member was cut off, nil when it was not.
func (m servedMember) CutOff() *api.CutOff { return m.d.cutOffState() }

// Now is this member's clock.
func (m servedMember) Now() time.Time { return m.d.now() }

// Cluster is the cluster certificate, nil before init.
func (m servedMember) Cluster() *serve.Identity {
	if cid := m.d.cluster.Load(); cid != nil {
		return &cid.id
	}
	return nil
}

// Server is the member's own certificate.
func (m servedMember) Server() (tls.Certificate, error) { return m.d.serverPair().TLS() }

// CheckBlocked refuses a blocked member's client API (Daemon.checkBlocked).
func (m servedMember) CheckBlocked(r *http.Request, c serve.Caller, need rest.Access) error {
	return m.d.checkBlocked(r, c, need)
}
