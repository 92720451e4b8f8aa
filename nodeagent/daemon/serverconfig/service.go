// Package serverconfig owns the server configuration (PUT and PATCH /1.0, and the
// configuration GET /1.0 shows): validating keys, splitting them into cluster-wide keys
// (replicated through raft, with a config version bumped by every change) and
// member-local keys (the node-local database), hashing secrets, and the ETag
// compare-and-set. Whether this member is clustered, its name and address, and moving
// the client listener after a local change are the daemon's, reached through Member.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package serverconfig

import (
	"context"
	"sync"

	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Database is the replicated database: a linearizable read and an atomic write, both
// forwarded to the leader when needed; Fresh and QueryLocal split a linearizable read in
// two, so that what was read at a replica state can be kept until the next write.
type Database interface {
	Query(ctx context.Context, sql string, args ...any) (db.Rows, error)
	Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error)
	// Fresh returns once this member's replica holds every write acknowledged before the
	// call, with its state then (the zero db.Replica: reads are forwarded, use Query).
	Fresh(ctx context.Context) (db.Replica, error)
	// QueryLocal reads this member's replica.
	QueryLocal(ctx context.Context, sql string, args ...any) (db.Rows, error)
}

// Local is the node-local database's configuration (localdb.DB).
type Local interface {
	Config() (map[string]string, error)
	// ConfigAt is Config with the generation it was read at.
	ConfigAt() (map[string]string, uint64, error)
	// Generation changes with every Set.
	Generation() uint64
	Set(values map[string]string) error
}

// Member is what the configuration needs to know of this member.
type Member interface {
	// Self is this member's name, "" before init.
	Self() string
	// ClusterAddress is its cluster.https_address.
	ClusterAddress() string
	// Clustered reports whether it has the cluster database open.
	Clustered() bool
	// LocalChanged is called after member-local keys changed (under the lock), to move
	// listeners.
	LocalChanged() error
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
}

// Deps are what a Service is built from.
type Deps struct {
	DB     Database
	Local  Local
	Member Member
	// Lock serialises member-local changes with the daemon's init, join, removal and
	// listener changes.
	Lock sync.Locker
}

// Service is the server configuration of one member.
type Service struct {
	db     Database
	local  Local
	member Member
	mu     sync.Locker
	// full is the last configuration read, by the replica state and the node-local
	// generation it was read at: GET /1.0 reads it once per write instead of per request.
	full db.Memo[fullKey, *State]
}

// New builds the server configuration.
func New(d Deps) *Service {
	return &Service{db: d.DB, local: d.Local, member: d.Member, mu: d.Lock}
}

// Routes registers PUT and PATCH /1.0 (GET /1.0 is the daemon's: it shows the member's
// environment too, and calls Full).
func (s *Service) Routes(m Router) {
	m.Handle("PUT /1.0", rest.Trusted, s.putServer)
	m.Handle("PATCH /1.0", rest.Trusted, s.patchServer)
}

// Full reads the visible configuration: global keys (linearizably, once clustered) and
// member-local keys, with the version and ETag. The State is shared with other callers
// until the next write (global or member-local): it must not be modified.
func (s *Service) Full(ctx context.Context) (*State, error) { return s.fullConfig(ctx) }

// Split validates changes and splits them into cluster-wide and member-local keys;
// secrets are hashed.
func Split(changes map[string]string) (global, local map[string]string, err error) {
	return splitConfig(changes)
}
