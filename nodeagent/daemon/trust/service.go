// Package trust owns the cluster's trusted client certificates: /1.0/certificates, the
// trust password check of an untrusted client adding its own certificate, and each
// member's cache of which fingerprints are trusted, kept coherent across members through
// /internal/trust/forget and the replica's applied index. Who the caller is, the database
// and the other members are the daemon's, reached through the small interfaces below.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package trust

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// Database is the replicated database as trust uses it.
type Database interface {
	// Query is a linearizable read, forwarded to the leader when needed.
	Query(ctx context.Context, sql string, args ...any) (db.Rows, error)
	// QueryLocal reads this member's replica without any consistency check.
	QueryLocal(ctx context.Context, sql string, args ...any) (db.Rows, error)
	// Exec is an atomic write through raft.
	Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error)
	// Applied is the replica's last applied index; err says why this member has no
	// database (rest.ErrNotInitialised, rest.ErrStarting, rest.ErrStopping).
	Applied() (index uint64, err error)
}

// Members is what trust needs to know of the membership.
type Members interface {
	// Self is this member's name.
	Self() string
	// Local are the members as this member's replica has them (no leader needed).
	Local(ctx context.Context) ([]db.Member, error)
}

// Peers reaches other members' internal API.
type Peers interface {
	// Post sends body to the member at addr and decodes its answer into out (may be nil).
	Post(ctx context.Context, addr, path string, body, out any) error
}

// Caller is who sent a request, as the daemon classified it.
type Caller struct {
	// Fingerprint is the client certificate's fingerprint, "" without one.
	Fingerprint string
	// Trusted is set for the local socket, a member or a trusted client certificate.
	Trusted bool
}

// Callers classifies requests.
type Callers interface {
	Caller(r *http.Request) Caller
}

// Router registers a route with the access it requires.
type Router interface {
	Handle(pattern string, need rest.Access, h rest.HandlerFunc)
}

// Deps are what a Service is built from.
type Deps struct {
	DB      Database
	Members Members
	Peers   Peers
	Callers Callers
	// Ops holds certificate-add tokens; ClusterFingerprint is the certificate they pin.
	Ops                Operations
	ClusterFingerprint func() string
	// Config reads the cluster-wide configuration (core.remote_token_expiry); Now is this
	// member's clock.
	Config Config
	Now    func() time.Time
	Log    *slog.Logger
}

// Config reads the cluster-wide configuration (defaults applied).
type Config interface {
	GlobalConfig(ctx context.Context) (map[string]string, error)
}

// Service is the trust domain of one member.
type Service struct {
	db        Database
	members   Members
	peers     Peers
	callers   Callers
	ops       Operations
	clusterFP func() string
	config    Config
	now       func() time.Time
	log       *slog.Logger
	cache     *trustCache
}

// New builds the trust domain.
func New(d Deps) *Service {
	return &Service{db: d.DB, members: d.Members, peers: d.Peers, callers: d.Callers, ops: d.Ops, clusterFP: d.ClusterFingerprint, config: d.Config, now: d.Now, log: d.Log, cache: newTrustCache()}
}

// Routes registers the certificate endpoints.
func (s *Service) Routes(m Router) {
	m.Handle("GET /1.0/certificates", rest.Trusted, s.getCertificates)
	m.Handle("POST /1.0/certificates", rest.Public, s.postCertificate)
	m.Handle("GET /1.0/certificates/{fingerprint}", rest.Trusted, s.getCertificate)
	m.Handle("PUT /1.0/certificates/{fingerprint}", rest.Trusted, s.putCertificate(false))
	m.Handle("PATCH /1.0/certificates/{fingerprint}", rest.Trusted, s.putCertificate(true))
	m.Handle("DELETE /1.0/certificates/{fingerprint}", rest.Trusted, s.deleteCertificate)
	m.Handle("POST /internal/trust/forget", rest.Member, s.postTrustForget)
}

// IsTrusted reports whether a client certificate fingerprint is in the cluster's trust
// store (see isTrusted); undecided is why it could not tell (see rest.NoDatabase), nil
// when the answer is final.
func (s *Service) IsTrusted(ctx context.Context, fp string) (trusted bool, undecided error) {
	return s.isTrusted(ctx, fp)
}

// IsMetricsClient reports whether fp is a trusted certificate of type metrics, which
// IsTrusted does not count: it is good for GET /1.0/metrics only.
func (s *Service) IsMetricsClient(ctx context.Context, fp string) bool {
	return s.isMetricsClient(ctx, fp)
}
