// Package serve is the nodeagent's serving / HTTP layer: the listeners (the local unix
// socket, the cluster port shared with raft through netmux, the client TLS port), caller
// classification and access levels, the route table every domain mounts its routes on,
// error answers, forwarding a request to the raft leader or to a member, and the
// database access every domain uses (linearizable reads and raft writes, forwarded to the
// leader when this member is not it).
//
// It knows nothing of how membership works: what it needs of it (this member's identity,
// who leads, where the database members are, whether the member is cut off or blocked)
// comes through the small interfaces below, which the daemon package implements.
//
// It must not import the daemon nor a domain package (imports_test.go).
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/netmux"
	"orch/nodeagent/store"
)

// ErrRunning says another daemon answers on the agent directory's socket.
var ErrRunning = errors.New("the daemon is running")

// ClockHeader carries the sender's clock (Unix milliseconds) on every member-to-member
// request, so that the receiver can tell a member whose clock is wrong.
const ClockHeader = "X-Orch-Clock"

// Membership is what serving needs to know of the member and its cluster.
type Membership interface {
	// Name is this member's name, "" before init.
	Name() string
	// ClusterAddress is this member's cluster.https_address.
	ClusterAddress() string
	// ClientAddress is this member's core.https_address.
	ClientAddress() string
	// Store is the open cluster database, nil when there is none.
	Store() *store.Store
	// NoStore is why Store is nil: rest.ErrNotInitialised, rest.ErrStarting or
	// rest.ErrStopping (never nil).
	NoStore() error
	// LeaderHint is the last leader a heartbeat announced, "" when none.
	LeaderHint() string
	// DatabaseAddresses are the database members recorded locally.
	DatabaseAddresses() []string
	// CutOff is why this member was cut off from the cluster, nil when it was not.
	CutOff() *api.CutOff
	// Now is this member's clock.
	Now() time.Time
}

// Identity is the cluster certificate every member shares.
type Identity struct {
	TLS         tls.Certificate
	DER         []byte
	Fingerprint string
}

// Certificates are the certificates this member presents.
type Certificates interface {
	// Cluster is the cluster certificate, nil before the member is initialised.
	Cluster() *Identity
	// Server is the member's own certificate (served before it is clustered).
	Server() (tls.Certificate, error)
}

// Gate refuses requests a member must not serve now (a blocked member's client API).
type Gate interface {
	CheckBlocked(r *http.Request, c Caller, need rest.Access) error
}

// Fence judges the cluster epoch of requests both ways (daemon/epoch's Fence).
type Fence interface {
	CheckPeer(w http.ResponseWriter, r *http.Request) error
	RefuseIfCutOff(pattern string, unix bool) error
	Transport(next http.RoundTripper) http.RoundTripper
}

// Trust tells trusted client certificates (daemon/trust).
type Trust interface {
	// IsTrusted reports whether fp is trusted; when it could not tell (no database yet, no
	// leader), trusted is false and undecided says why.
	IsTrusted(ctx context.Context, fp string) (trusted bool, undecided error)
}

// Domain mounts one domain's routes.
type Domain func(Router)

// Deps are what a Server is built from.
type Deps struct {
	Members Membership
	Certs   Certificates
	Gate    Gate
	Fence   Fence
	Trust   Trust
	// Domains mount their routes on every listener's route table, in this order.
	Domains []Domain
	// AnswerHeaders are the headers of a leader's answer copied back to the caller of a
	// proxied request besides Content-Type, ETag and rest.NotAppliedHeader (the fence's
	// cut-off headers).
	AnswerHeaders []string
	// Conflicts are errors answered 409 Conflict.
	Conflicts []error
	Log       *slog.Logger
}

// Server serves the API on the member's listeners.
type Server struct {
	Deps
	peers *peerPool
	// remoteReads shares read index round trips to the leader among this member's readers.
	remoteReads *store.Rounds
	mux         *netmux.Mux
	muxSrv      *http.Server
	clientSrv   *http.Server
	clientAddr  string
	unixSrv     *http.Server
}

// New builds a server; it listens on nothing until ServeUnix and StartNetwork.
func New(deps Deps) *Server {
	s := &Server{Deps: deps}
	s.peers = newPeerPool(s)
	s.remoteReads = store.NewRounds(readIndexTimeout, s.askLeaderIndex)
	return s
}

// Mux is the cluster port's multiplexer (raft connects through it), nil when the network
// is stopped.
func (s *Server) Mux() *netmux.Mux { return s.mux }

// Close stops the unix socket and closes the pooled peer clients.
func (s *Server) Close() {
	if s.unixSrv != nil {
		s.unixSrv.Close()
	}
	s.peers.close()
}
