// Package images owns the cluster's images: /1.0/images and its aliases, the image servers
// (/1.0/remotes), copying an image between members (/internal/images/...), and keeping
// cluster.images_minimal_replica members holding each image. The image files themselves
// are modules/image's; what members exist, the database and the other members are the
// daemon's, reached through the small interfaces below.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package images

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"orch/modules/image"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Database is the replicated database: a linearizable read and an atomic write, both
// forwarded to the leader when needed.
type Database interface {
	Query(ctx context.Context, sql string, args ...any) (db.Rows, error)
	Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error)
}

// Members is what images need to know of the membership.
type Members interface {
	// Self is this member's name.
	Self() string
	// All are the members, in id order.
	All(ctx context.Context) ([]db.Member, error)
	// Online are the members ONLINE by the leader's clock, in id order.
	Online(ctx context.Context) ([]db.Member, error)
}

// Config reads the cluster-wide configuration (defaults applied).
type Config interface {
	GlobalConfig(ctx context.Context) (map[string]string, error)
}

// Peers reaches other members' internal API.
type Peers interface {
	// Post sends body to the member at addr and decodes its answer into out (may be nil).
	Post(ctx context.Context, addr, path string, body, out any) error
	// Client is a client of the member at addr, for streamed answers.
	Client(addr string) (*api.Client, error)
}

// Operations starts a request's operation.
type Operations interface {
	Start(r *http.Request, t rest.Task) (api.Operation, error)
}

// Events publishes lifecycle events.
type Events interface {
	Lifecycle(action, source string, ctx map[string]any)
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
}

// Deps are what a Service is built from.
type Deps struct {
	DB      Database
	Members Members
	Config  Config
	Peers   Peers
	// Open returns this member's image store (made on first use by the daemon).
	Open func() (*image.Store, error)
	// Ops answers an import as an operation; Events tells listeners.
	Ops    Operations
	Events Events
	Log    *slog.Logger
}

// Service is the images domain of one member.
type Service struct {
	db      Database
	members Members
	config  Config
	peers   Peers
	open    func() (*image.Store, error)
	ops     Operations
	events  Events
	log     *slog.Logger
	// fetchMu serialises image fetches on this member, so that concurrent launches of one
	// image download it once.
	fetchMu sync.Mutex
}

// New builds the images domain.
func New(d Deps) *Service {
	return &Service{db: d.DB, members: d.Members, config: d.Config, peers: d.Peers, open: d.Open, ops: d.Ops, events: d.Events, log: d.Log}
}

// Routes registers the image and remote endpoints.
func (s *Service) Routes(m Router) {
	m.Handle("GET /1.0/images", rest.Trusted, s.getImages)
	m.Handle("POST /1.0/images", rest.Trusted, s.postImage)
	m.Handle("GET /1.0/images/{name}", rest.Trusted, s.getImage)
	m.Handle("PUT /1.0/images/{name}", rest.Trusted, s.putImage)
	m.Handle("PATCH /1.0/images/{name}", rest.Trusted, s.putImage)
	m.Handle("DELETE /1.0/images/{name}", rest.Trusted, s.deleteImage)
	m.Handle("GET /1.0/images/aliases", rest.Trusted, s.getImageAliases)
	m.Handle("POST /1.0/images/aliases", rest.Trusted, s.postImageAlias)
	m.Handle("GET /1.0/images/aliases/{name}", rest.Trusted, s.getImageAlias)
	m.Handle("PUT /1.0/images/aliases/{name}", rest.Trusted, s.putImageAlias)
	m.Handle("PATCH /1.0/images/aliases/{name}", rest.Trusted, s.putImageAlias)
	m.Handle("POST /1.0/images/aliases/{name}", rest.Trusted, s.renameImageAlias)
	m.Handle("DELETE /1.0/images/aliases/{name}", rest.Trusted, s.deleteImageAlias)
	m.Handle("GET /internal/images/{fp}/{part}", rest.Member, s.getImageFile)
	m.Handle("POST /internal/images/{fp}/fetch", rest.Member, s.postImageFetch)
	m.Handle("POST /internal/images/{fp}/drop", rest.Member, s.postImageDrop)

	m.Handle("GET /1.0/remotes", rest.Trusted, s.getRemotes)
	m.Handle("POST /1.0/remotes", rest.Trusted, s.postRemote)
	m.Handle("DELETE /1.0/remotes/{name}", rest.Trusted, s.deleteRemote)
}

// Ensure makes the image source refers to available on this member and returns its
// fingerprint (see ensureImage).
func (s *Service) Ensure(ctx context.Context, source string) (string, error) {
	return s.ensureImage(ctx, source)
}

// ReplicateAll brings every image back to its replica count (after a holder left).
func (s *Service) ReplicateAll(ctx context.Context) { s.replicateAll(ctx) }

// driverError turns an image store error into the API error it means.
func driverError(err error) error { return rest.WithStatus(err, imageStatus) }

// imageStatus is the HTTP status of an image store error, 0 when it has none.
func imageStatus(err error) int {
	switch {
	case errors.Is(err, image.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, image.ErrInvalid), errors.Is(err, fs.ErrInvalid), strings.Contains(err.Error(), "not a regular file"):
		return http.StatusBadRequest
	}
	return 0
}
