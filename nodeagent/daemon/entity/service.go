// Package entity owns the cluster's storage pools (with their custom and container
// volumes) and bridge networks: /1.0/storage-pools, /1.0/networks and their internal
// endpoints, the one define/create/delete flow both follow across members (engine.go), and
// bringing this member's parts up after init, join and restart. The drivers are
// modules/storage's and modules/bridge's; the database, the membership and the other
// members are the daemon's, reached through the small interfaces below.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package entity

import (
	"context"
	"log/slog"
	"sync"

	"orch/modules/storage"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Entities of the node-specific keys (api.IsNodeSpecific, member_config).
const (
	PoolEntity    = "storage-pool"
	NetworkEntity = "network"
)

// Database is the replicated database: a linearizable read and an atomic write, both
// forwarded to the leader when needed.
type Database interface {
	Query(ctx context.Context, sql string, args ...any) (db.Rows, error)
	Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error)
}

// Members is what pools and networks need to know of the membership.
type Members interface {
	// Self is this member's name.
	Self() string
	// All are the members, in id order.
	All(ctx context.Context) ([]db.Member, error)
	// RequireOnline fails, naming them, when any of the named members (every member when
	// none is named) is OFFLINE by the leader's clock.
	RequireOnline(ctx context.Context, names ...string) error
	// IsLeader reports whether this member is the raft leader.
	IsLeader() bool
}

// Peers reaches other members' internal API.
type Peers interface {
	// Post sends body to the member at addr and decodes its answer into out (may be nil).
	Post(ctx context.Context, addr, path string, body, out any) error
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
	// OnLeader wraps h to run on the raft leader (forwarding the request there).
	OnLeader(h rest.HandlerFunc) rest.HandlerFunc
}

// Deps are what a Service is built from.
type Deps struct {
	DB      Database
	Members Members
	Peers   Peers
	// Dir is the agent directory (pools and bridges keep their files under it).
	Dir string
	Log *slog.Logger
}

// Service is the storage and network domain of one member.
type Service struct {
	db      Database
	members Members
	peers   Peers
	dir     string
	log     *slog.Logger
	// mu serialises creates and deletes coordinated by this member (the leader).
	mu sync.Mutex
	// net is the bridge manager, made on first use.
	netOnce sync.Once
	net     bridgeManager
	netErr  error
}

// New builds the storage and network domain.
func New(d Deps) *Service {
	return &Service{db: d.DB, members: d.Members, peers: d.Peers, dir: d.Dir, log: d.Log}
}

// Row is a pool or network as other domains see it.
type Row struct{ e *entityRow }

// ID is the pool's or network's row id.
func (r Row) ID() int64 { return r.e.id }

// CreatedOn reports whether member's part is Created.
func (r Row) CreatedOn(member string) bool {
	p := r.e.members[member]
	return p != nil && p.state == api.StatusCreated
}

// Pool reads the storage pool name; ok is false when there is none.
func (s *Service) Pool(ctx context.Context, name string) (r Row, ok bool, err error) {
	return s.load(ctx, poolKind, name)
}

// Network reads the network name; ok is false when there is none.
func (s *Service) Network(ctx context.Context, name string) (r Row, ok bool, err error) {
	return s.load(ctx, networkKind, name)
}

func (s *Service) load(ctx context.Context, k *entityKind, name string) (Row, bool, error) {
	e, err := s.loadEntity(ctx, k, name)
	if err != nil || e == nil {
		return Row{}, false, err
	}
	return Row{e: e}, true, nil
}

// PoolDriver is this member's driver of pool r (with its config as this member sees it).
func (s *Service) PoolDriver(r Row) (storage.Driver, storage.Pool, error) {
	return s.poolDriver(r.e.request(s.members.Self()))
}

// AfterInit brings this member's parts up once it is a member (bootstrap or join).
func (s *Service) AfterInit(ctx context.Context) { s.storageAfterInit(ctx) }

// AfterResume brings this member's parts up after a restart, retrying until the database
// answers.
func (s *Service) AfterResume(ctx context.Context) { s.storageAfterResume(ctx) }

// RefuseIfHoldsVolumes refuses a clean removal of a member that still holds volumes.
func (s *Service) RefuseIfHoldsVolumes(ctx context.Context, member string) error {
	return s.refuseIfHoldsVolumes(ctx, member)
}

// ForgetMemberStatements are the statements dropping a removed member's volumes.
func ForgetMemberStatements(member string) []store.Statement { return forgetMemberStorage(member) }

// findMember finds the member named name.
func findMember(ms []db.Member, name string) (db.Member, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return db.Member{}, false
}
