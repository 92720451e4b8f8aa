// Package tokens owns join tokens: issuing one for a new member (`cluster add NAME`,
// POST /1.0/cluster/members, leader only), listing and revoking them, and checking one when
// a member joins (the statement consuming it goes into the entry that records the member).
// The database, the members, the cluster certificate and the leader's clock are the
// daemon's, reached through the small interfaces below.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/config"
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

// Members lists the members (name, cluster address), in id order.
type Members interface {
	All(ctx context.Context) ([]db.Member, error)
}

// Config reads the cluster-wide configuration (defaults applied).
type Config interface {
	GlobalConfig(ctx context.Context) (map[string]string, error)
}

// Cluster is the cluster certificate a token pins.
type Cluster interface {
	Fingerprint() string
}

// Operations starts a request's operation (a token is one, as LXD's).
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
	OnLeader(h rest.HandlerFunc) rest.HandlerFunc
}

// Deps are what a Service is built from.
type Deps struct {
	DB      Database
	Members Members
	Config  Config
	Cluster Cluster
	// Now is this member's clock (the leader's, where tokens are issued and checked).
	Now func() time.Time
	// CheckName validates a new member's name.
	CheckName func(string) error
	// Ops starts the token's operation; Events tells listeners.
	Ops    Operations
	Events Events
}

// Service is the join tokens of the cluster, as one member serves them.
type Service struct {
	db        Database
	members   Members
	config    Config
	cluster   Cluster
	now       func() time.Time
	checkName func(string) error
	ops       Operations
	events    Events
}

// New builds the join tokens service.
func New(d Deps) *Service {
	return &Service{db: d.DB, members: d.Members, config: d.Config, cluster: d.Cluster, now: d.Now, checkName: d.CheckName, ops: d.Ops, events: d.Events}
}

// Routes registers the token endpoints.
func (s *Service) Routes(m Router) {
	m.Handle("POST /1.0/cluster/members", rest.Trusted, m.OnLeader(s.postToken))
	m.Handle("GET /1.0/cluster/tokens", rest.Trusted, s.getTokens)
	m.Handle("DELETE /1.0/cluster/tokens/{name}", rest.Trusted, s.deleteToken)
}

// AcceptedPrefix marks the tokens row of a member whose join was accepted and not yet
// completed: "accepted:FINGERPRINT:SECRET_HASH" (SECRET_HASH empty for a trust-password
// join). It lets the same joiner (same certificate, same name, same secret) retry an accept
// whose answer it lost and get the same answer; postComplete and forgetMember delete it.
const AcceptedPrefix = "accepted:"

// AcceptedMarker is the tokens row value of an accepted join.
func AcceptedMarker(fingerprint, secretHash string) string {
	return AcceptedPrefix + fingerprint + ":" + secretHash
}

// postToken issues a one-use join token for a new member (`cluster add NAME`).
func (s *Service) postToken(w http.ResponseWriter, r *http.Request) error {
	var req api.ClusterMemberTokenPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if err := s.checkName(req.ServerName); err != nil {
		return rest.BadRequest("%v", err)
	}
	ctx := r.Context()
	members, err := s.members.All(ctx)
	if err != nil {
		return err
	}
	addrs := []string{}
	for _, m := range members {
		if m.Name == req.ServerName {
			return rest.Conflict("a member named %q already exists", req.ServerName)
		}
		addrs = append(addrs, m.Address)
	}
	cfg, err := s.config.GlobalConfig(ctx)
	if err != nil {
		return err
	}
	expiry, err := config.ParseExpiry(cfg["cluster.join_token_expiry"])
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	tok := api.JoinToken{ServerName: req.ServerName, Secret: hex.EncodeToString(secret),
		Fingerprint: s.cluster.Fingerprint(), Addresses: addrs, ExpiresAt: s.now().Add(expiry).UTC().Truncate(time.Second)}
	if _, err := s.db.Exec(ctx, db.Stmt(`INSERT INTO tokens(name, secret_hash, expires_at) VALUES(?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET secret_hash = excluded.secret_hash, expires_at = excluded.expires_at`,
		tok.ServerName, HashSecret(tok.Secret), tok.ExpiresAt.UnixMilli())); err != nil {
		return err
	}
	op, err := s.ops.Start(r, s.tokenTask(tok))
	if err != nil {
		return err
	}
	s.events.Lifecycle("cluster-token-created", "/1.0/cluster/members", map[string]any{"serverName": tok.ServerName})
	return rest.WriteAsync(w, op)
}

// tokenTask is the operation of a join token, as LXD's (class token, its metadata what
// `lxc cluster add` prints and `lxc cluster list-tokens` lists): it ends when the token is
// used (the row is no longer this secret's), revoked (cancelling deletes the row) or expired.
func (s *Service) tokenTask(tok api.JoinToken) rest.Task {
	hash := HashSecret(tok.Secret)
	return rest.Task{Class: api.OperationClassToken, Description: "Executing operation", Kept: KeptJoinToken,
		Resources: map[string][]string{"cluster": {}}, Metadata: tok.Metadata(), ExpiresAt: tok.ExpiresAt,
		Alive: func(ctx context.Context) bool {
			rows, err := s.db.Query(ctx, `SELECT 1 FROM tokens WHERE name = ? AND secret_hash = ?`, tok.ServerName, hash)
			return err != nil || len(rows) > 0 // unknown when the database does not answer: keep it
		},
		OnCancel: func(ctx context.Context) error {
			_, err := s.db.Exec(ctx, db.Stmt(`DELETE FROM tokens WHERE name = ? AND secret_hash = ?`, tok.ServerName, hash))
			return err
		}}
}

// KeptJoinToken is the kind of the join tokens' operations a member keeps across restarts.
const KeptJoinToken = "join-token"

// Rebuild is the task of a kept join token's operation after a restart, from its
// metadata (ok false: not a join token's). Whether it is still unused is asked of the
// database when the operation is next listed (Alive), as for any token.
func (s *Service) Rebuild(meta map[string]any) (rest.Task, bool) {
	b, err := json.Marshal(meta)
	var op api.JoinTokenOperation
	if err != nil || json.Unmarshal(b, &op) != nil || op.ServerName == "" || op.Secret == "" {
		return rest.Task{}, false
	}
	return s.tokenTask(op.Token()), true
}

func (s *Service) getTokens(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.db.Query(r.Context(), `SELECT name, expires_at FROM tokens WHERE secret_hash NOT LIKE 'accepted:%' ORDER BY name`)
	if err != nil {
		return err
	}
	out := []api.ClusterMemberToken{}
	for _, row := range rows {
		out = append(out, api.ClusterMemberToken{ServerName: db.Str(row[0]), ExpiresAt: time.UnixMilli(db.I64(row[1])).UTC()})
	}
	return rest.WriteOK(w, out, "")
}

func (s *Service) deleteToken(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	res, err := s.db.Exec(r.Context(), db.Stmt(`DELETE FROM tokens WHERE name = ? AND secret_hash NOT LIKE 'accepted:%'`, name))
	if err != nil {
		return err
	}
	if len(res) == 0 || res[0].RowsAffected == 0 {
		return rest.NotFound("no join token for %q", name)
	}
	return rest.WriteOK(w, nil, "")
}

// Check checks a join token and returns the statement that consumes it: it becomes
// the accepted marker of this joiner, in the entry that records the member, and only if it
// is still the token that was checked (a token is used once).
func (s *Service) Check(ctx context.Context, name, secret, fingerprint string) ([]store.Statement, error) {
	rows, err := s.db.Query(ctx, `SELECT secret_hash, expires_at FROM tokens WHERE name = ?`, name)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || strings.HasPrefix(db.Str(rows[0][0]), AcceptedPrefix) {
		return nil, api.Errorf(http.StatusForbidden, "no valid join token for %q: it was used, revoked or never issued", name)
	}
	hash := HashSecret(secret)
	if subtle.ConstantTimeCompare([]byte(hash), []byte(db.Str(rows[0][0]))) != 1 {
		return nil, api.Errorf(http.StatusForbidden, "invalid join token for %q", name)
	}
	if exp := time.UnixMilli(db.I64(rows[0][1])); s.now().After(exp) {
		return nil, api.Errorf(http.StatusForbidden, "join token for %q expired at %s", name, exp.UTC().Format(time.RFC3339))
	}
	return []store.Statement{{SQL: `UPDATE tokens SET secret_hash = ? WHERE name = ? AND secret_hash = ?`,
		Args: []any{AcceptedMarker(fingerprint, hash), name, hash}, Expect: store.Int64(1)}}, nil
}

// HashSecret is the hex SHA-256 of a token secret, as the tokens table keeps it.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
