// Package instances owns the cluster's instances (LXC system containers) and profiles:
// /1.0/instances and /1.0/profiles, placing a launch on a member, running requests about
// an instance on the member owning it (forwarding them there), exec and file transfer,
// the root disk on the profile's pool, autostart after a restart and stopping instances
// for a host shutdown. The container manager is modules/lxc's; images, pools, networks,
// the database and the other members are reached through the small interfaces below.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package instances

import (
	"context"
	"log/slog"
	"net/http"

	"orch/modules/image"
	"orch/modules/lxc"
	"orch/modules/storage"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Database is the replicated database as instances use it.
type Database interface {
	// Query is a linearizable read, forwarded to the leader when needed.
	Query(ctx context.Context, sql string, args ...any) (db.Rows, error)
	// QueryLocal reads this member's replica without any consistency check.
	QueryLocal(ctx context.Context, sql string, args ...any) (db.Rows, error)
	// Exec is an atomic write through raft.
	Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error)
}

// Members is what instances need to know of the membership.
type Members interface {
	// Self is this member's name.
	Self() string
	// Online are the members ONLINE by the leader's clock, in id order.
	Online(ctx context.Context) ([]db.Member, error)
	// RequireOnline fails, naming them, when any of the named members is OFFLINE.
	RequireOnline(ctx context.Context, names ...string) error
}

// Peers reaches other members' internal API.
type Peers interface {
	// Client is a client of the member at addr.
	Client(addr string) (*api.Client, error)
}

// Images makes an image available on this member.
type Images interface {
	// Ensure makes the image source refers to available here and returns its fingerprint.
	Ensure(ctx context.Context, source string) (string, error)
}

// Entity is a storage pool or network as instances see it.
type Entity interface {
	// ID is its row id.
	ID() int64
	// CreatedOn reports whether member's part is Created.
	CreatedOn(member string) bool
}

// Entities reads the pools and networks instances use.
type Entities interface {
	// Pool and Network read one by name; ok is false when there is none.
	Pool(ctx context.Context, name string) (e Entity, ok bool, err error)
	Network(ctx context.Context, name string) (e Entity, ok bool, err error)
	// PoolDriver is this member's driver of pool.
	PoolDriver(pool Entity) (storage.Driver, storage.Pool, error)
}

// Usage measures a running container of this member for its state (what `lxc info` shows
// under Resources): CPU, memory, processes and its interfaces' counters, from its init's PID.
type Usage interface {
	Usage(pid int, st *api.InstanceState) error
}

// Operations runs a request's work in the background, answered as an LXD operation.
type Operations interface {
	// Start starts t and returns the operation for the async answer (rest.WriteAsync).
	Start(r *http.Request, t rest.Task) (api.Operation, error)
}

// Events publishes lifecycle events (/1.0/events).
type Events interface {
	// Lifecycle publishes action ("instance-started") on source ("/1.0/instances/c1").
	Lifecycle(action, source string, ctx map[string]any)
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
}

// Deps are what a Service is built from.
type Deps struct {
	DB       Database
	Members  Members
	Peers    Peers
	Images   Images
	Entities Entities
	// Drivers returns this member's container manager and image store (made on first use
	// by the daemon).
	Drivers func() (*lxc.Manager, *image.Store, error)
	Ops     Operations
	Events  Events
	// Usage measures this member's running containers (nil: their state shows no usage).
	Usage Usage
	// Group names the members of a cluster group (launch --target @GROUP); ok is false
	// when there is no such group.
	Group func(ctx context.Context, name string) (members []string, ok bool, err error)
	Log   *slog.Logger
}

// Service is the instances domain of one member.
type Service struct {
	db       Database
	members  Members
	peers    Peers
	images   Images
	entities Entities
	drivers  func() (*lxc.Manager, *image.Store, error)
	ops      Operations
	events   Events
	usage    Usage
	group    func(ctx context.Context, name string) ([]string, bool, error)
	log      *slog.Logger
}

// New builds the instances domain.
func New(d Deps) *Service {
	return &Service{db: d.DB, members: d.Members, peers: d.Peers, images: d.Images, entities: d.Entities, drivers: d.Drivers, ops: d.Ops, events: d.Events, usage: d.Usage, group: d.Group, log: d.Log}
}

// Autostart starts this member's instances that should run, after a restart.
func (s *Service) Autostart(ctx context.Context) { s.autostartInstances(ctx) }

// StopForShutdown stops this member's instances when the host shuts down.
func (s *Service) StopForShutdown() { s.stopInstancesForShutdown() }

// RefuseIfOwnsInstances refuses a clean removal of a member that still owns instances.
func (s *Service) RefuseIfOwnsInstances(ctx context.Context, member string) error {
	return s.refuseIfOwnsInstances(ctx, member)
}

// ForgetMemberStatements are the statements dropping a removed member's instances.
func ForgetMemberStatements(member string) []store.Statement { return forgetMemberInstances(member) }

// HostShuttingDown reports whether the host is shutting down (systemd's shutdown target).
func HostShuttingDown() bool { return hostShuttingDown() }
