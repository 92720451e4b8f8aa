package trust

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
	"orch/nodeagent/config"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/daemon/rest"
)

// trustCache remembers which client certificate fingerprints are trusted. A trusted
// fingerprint is remembered with the local replica's applied index at which it was last
// confirmed: once the replica moves on, the next request re-checks it there (a local read),
// so a removal reaches every member's cache through raft even when the member missed the
// removal's notice. A miss is looked up in the database (linearizably) and remembered
// briefly, so an unknown client cannot make every request a database round trip.
type trustCache struct {
	mu      sync.Mutex
	epoch   uint64            // bumped by forget: lookups begun before it are not remembered
	trusted map[string]uint64 // fingerprint → applied index when last confirmed
	misses  map[string]time.Time
	// revoked holds fingerprints removed while this member's replica may not have applied
	// the removal yet: the replica is not asked about them until it has.
	revoked map[string]bool
}

const missTTL = 2 * time.Second

func newTrustCache() *trustCache {
	return &trustCache{trusted: map[string]uint64{}, misses: map[string]time.Time{}, revoked: map[string]bool{}}
}

// cached returns what the cache knows of fp: trusted (confirmed at index at), or a
// recent miss, or nothing (known false).
func (t *trustCache) cached(fp string) (trusted bool, at uint64, known bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.trusted[fp]; ok {
		return true, at, true
	}
	if at, ok := t.misses[fp]; ok && time.Since(at) < missTTL {
		return false, 0, true
	}
	return false, 0, false
}

// begin returns the epoch a lookup starts in, for remember.
func (t *trustCache) begin() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.epoch
}

// remember records a lookup's answer unless a forget happened since it began (the answer
// may predate the change).
func (t *trustCache) remember(fp string, trusted bool, epoch, at uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.epoch != epoch {
		return
	}
	if trusted {
		t.trusted[fp] = at
		delete(t.misses, fp)
	} else {
		delete(t.trusted, fp)
		t.misses[fp] = time.Now()
	}
}

// forget drops everything known about fp (its trust changed); removed marks it revoked.
func (t *trustCache) forget(fp string, removed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.epoch++
	delete(t.trusted, fp)
	delete(t.misses, fp)
	if removed {
		t.revoked[fp] = true
	} else {
		delete(t.revoked, fp)
	}
}

// isRevoked reports whether fp was removed and the replica may still hold it.
func (t *trustCache) isRevoked(fp string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.revoked[fp]
}

// settled ends fp's revoked state: the replica no longer holds it, or it was trusted again.
func (t *trustCache) settled(fp string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.revoked, fp)
}

// isTrusted reports whether a client certificate fingerprint is in the cluster's trust store.
// Without an open database (starting, stopping) or an answer from the leader about a
// fingerprint the replica lacks, it cannot tell: undecided says why (a 503, not a 403). A
// member that is not initialised trusts nobody.
func (s *Service) isTrusted(ctx context.Context, fp string) (bool, error) {
	applied, err := s.db.Applied()
	if errors.Is(err, rest.ErrNotInitialised) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ok, at, known := s.cache.cached(fp)
	switch {
	case known && !ok:
		return false, nil
	case ok && at == applied:
		return true, nil
	}
	epoch := s.cache.begin()
	// The local replica first: it answers without a leader (during an election, or on a
	// member cut off from the majority). A removal reaches it through raft, a moment after
	// the forget notice: until then a revoked fingerprint is asked of the leader. Only a
	// fingerprint the replica lacks (perhaps added a moment ago) needs the leader too.
	revoked := s.cache.isRevoked(fp)
	if !revoked && s.trustedLocally(ctx, fp) {
		s.cache.remember(fp, true, epoch, applied)
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := s.db.Query(ctx, `SELECT 1 FROM certificates WHERE fingerprint = ? AND type != ?`, fp, MetricsType)
	if err != nil {
		return false, rest.NotApplied(rest.Unavailable("cannot tell whether the client certificate is trusted now (asking the database leader: %v); try again", err))
	}
	trusted := len(rows) > 0
	if revoked && (trusted || !s.trustedLocally(ctx, fp)) {
		s.cache.settled(fp)
	}
	s.cache.remember(fp, trusted, epoch, applied)
	return trusted, nil
}

// trustedLocally looks fp up in this member's replica.
func (s *Service) trustedLocally(ctx context.Context, fp string) bool {
	rows, err := s.db.QueryLocal(ctx, `SELECT 1 FROM certificates WHERE fingerprint = ? AND type != ?`, fp, MetricsType)
	return err == nil && len(rows) > 0
}

// MetricsType is the certificate type good only for GET /1.0/metrics (as LXD's).
const MetricsType = "metrics"

// isMetricsClient reports whether fp is a certificate of type metrics: the local replica
// first, then (for one added a moment ago) a linearizable read.
func (s *Service) isMetricsClient(ctx context.Context, fp string) bool {
	const q = `SELECT 1 FROM certificates WHERE fingerprint = ? AND type = ?`
	if rows, err := s.db.QueryLocal(ctx, q, fp, MetricsType); err == nil && len(rows) > 0 {
		return true
	}
	rows, err := s.db.Query(ctx, q, fp, MetricsType)
	return err == nil && len(rows) > 0
}

// postCertificate trusts a client certificate: a trusted caller may add any; an untrusted
// one must give the trust password and adds its own (LXD's `lxc remote add`).
func (s *Service) postCertificate(w http.ResponseWriter, r *http.Request) error {
	var req api.CertificatesPost
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if req.Token {
		return s.postCertificateToken(w, r, req)
	}
	if err := checkUnrestricted(req.Restricted, req.Projects); err != nil {
		return err
	}
	ctx := r.Context()
	c := s.callers.Caller(r)
	if req.Certificate == "" && c.Fingerprint != "" && r.TLS != nil {
		req.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.TLS.PeerCertificates[0].Raw}))
	}
	fp, err := pki.FingerprintPEM([]byte(req.Certificate))
	if err != nil {
		return rest.BadRequest("certificate: %v", err)
	}
	if req.Name == "" {
		req.Name = commonName(req.Certificate) // as LXD: `lxc remote add` sends no name
	}
	if !c.Trusted {
		name, isToken, err := s.redeemToken(ctx, req.Password)
		if err != nil {
			return err
		}
		if isToken {
			req.Name = name
		} else if err := s.checkTrustPassword(ctx, req.Password); err != nil {
			return err
		}
		if fp != c.Fingerprint {
			return api.Errorf(http.StatusForbidden, "an untrusted client can only add its own certificate")
		}
	}
	if req.Type == "" {
		req.Type = "client"
	}
	if req.Type != "client" && req.Type != MetricsType {
		return rest.BadRequest("type %q: only \"client\" and \"metrics\" certificates can be added", req.Type)
	}
	if _, err := s.db.Exec(ctx, db.Stmt(`INSERT INTO certificates(fingerprint, name, type, certificate) VALUES(?, ?, ?, ?)
		ON CONFLICT(fingerprint) DO UPDATE SET name = excluded.name`, fp, req.Name, req.Type, req.Certificate)); err != nil {
		return err
	}
	s.cache.forget(fp, false)
	s.notifyTrustChange(ctx, fp, false)
	return rest.WriteOK(w, nil, "")
}

// commonName is the subject common name of a PEM certificate ("" when unreadable).
func commonName(certPEM string) string {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return ""
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return ""
	}
	return c.Subject.CommonName
}

// minFingerprintPrefix is the shortest fingerprint prefix DELETE /1.0/certificates accepts.
const minFingerprintPrefix = 8

// trustNoticeTimeout bounds how long a trust change waits for each member's acknowledgement.
const trustNoticeTimeout = 3 * time.Second

// deleteCertificate is DELETE /1.0/certificates/{fingerprint} (a full fingerprint or a
// unique prefix): it removes a trusted client certificate in one raft write, then tells
// every member, before answering, to drop it from its cache and to ask the leader about
// it until its own replica has applied the removal, so that the client is refused at once
// everywhere. A member that misses the notice refuses it once its replica applies the
// removal (isTrusted re-checks cached entries against the replica).
func (s *Service) deleteCertificate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	fp, err := s.resolveFingerprint(ctx, r.PathValue("fingerprint"))
	if err != nil {
		return err
	}
	res, err := s.db.Exec(ctx, db.Stmt(`DELETE FROM certificates WHERE fingerprint = ?`, fp))
	if err != nil {
		return err
	}
	if len(res) == 1 && res[0].RowsAffected == 0 {
		return rest.NotFound("no trusted certificate %s", fp)
	}
	s.cache.forget(fp, true)
	s.notifyTrustChange(ctx, fp, true)
	return rest.WriteOK(w, nil, "")
}

// resolveFingerprint turns a fingerprint or a unique prefix of one into the full
// fingerprint of a trusted certificate.
func (s *Service) resolveFingerprint(ctx context.Context, prefix string) (string, error) {
	prefix = strings.ToLower(prefix)
	if len(prefix) < minFingerprintPrefix || len(prefix) > 64 || strings.Trim(prefix, "0123456789abcdef") != "" {
		return "", rest.BadRequest("fingerprint %q: want at least %d hex digits of a SHA-256 fingerprint", prefix, minFingerprintPrefix)
	}
	rows, err := s.db.Query(ctx, `SELECT fingerprint FROM certificates WHERE substr(fingerprint, 1, ?) = ? ORDER BY fingerprint`, int64(len(prefix)), prefix)
	if err != nil {
		return "", err
	}
	switch len(rows) {
	case 0:
		return "", rest.NotFound("no trusted certificate %s", prefix)
	case 1:
		return db.Str(rows[0][0]), nil
	}
	return "", rest.Conflict("fingerprint prefix %s matches %d certificates; give more digits", prefix, len(rows))
}

// fingerprintRequest is the body of /internal/trust/forget.
type fingerprintRequest struct {
	Fingerprint string `json:"fingerprint"`
	// Removed is set when the certificate was removed (rather than added).
	Removed bool `json:"removed,omitempty"`
}

// notifyTrustChange tells every other member to drop fp from its trust cache, in parallel,
// and waits for them (each within trustNoticeTimeout). A member that cannot be told is
// logged; it catches up when its replica applies the change.
func (s *Service) notifyTrustChange(ctx context.Context, fp string, removed bool) {
	members, err := s.members.Local(ctx)
	if err != nil {
		s.log.Warn("trust change: listing members failed", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, m := range members {
		if m.Name == s.members.Self() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, trustNoticeTimeout)
			defer cancel()
			if err := s.peers.Post(cctx, m.Address, "/internal/trust/forget", fingerprintRequest{Fingerprint: fp, Removed: removed}, nil); err != nil {
				s.log.Warn("trust change: member not told; it catches up through raft", "member", m.Name, "err", err)
			}
		}()
	}
	wg.Wait()
}

// postTrustForget (member) drops a fingerprint from this member's trust cache.
func (s *Service) postTrustForget(w http.ResponseWriter, r *http.Request) error {
	var req fingerprintRequest
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	s.cache.forget(strings.ToLower(req.Fingerprint), req.Removed)
	return rest.WriteOK(w, nil, "")
}

func (s *Service) checkTrustPassword(ctx context.Context, pw string) error {
	if _, err := s.db.Applied(); err != nil {
		return err
	}
	rows, err := s.db.Query(ctx, `SELECT value FROM config WHERE key = 'core.trust_password'`)
	if err != nil {
		return err
	}
	if len(rows) == 0 || pw == "" || !config.CheckPassword(db.Str(rows[0][0]), pw) {
		return api.Errorf(http.StatusForbidden, "not authorized: wrong or missing trust password")
	}
	return nil
}

func (s *Service) getCertificates(w http.ResponseWriter, r *http.Request) error {
	out, err := s.certificates(r.Context(), "")
	if err != nil {
		return err
	}
	return rest.WriteList(w, r, "/1.0/certificates", out, func(c api.Certificate) string { return c.Fingerprint })
}

// certificates reads the trusted certificates (only fp's when fp is not "") in LXD's shape.
func (s *Service) certificates(ctx context.Context, fp string) ([]api.Certificate, error) {
	rows, err := s.db.Query(ctx, `SELECT fingerprint, name, type, certificate FROM certificates
		WHERE ? = '' OR fingerprint = ? ORDER BY name, fingerprint`, fp, fp)
	if err != nil {
		return nil, err
	}
	out := []api.Certificate{}
	for _, row := range rows {
		out = append(out, api.Certificate{Fingerprint: db.Str(row[0]), Name: db.Str(row[1]), Type: db.Str(row[2]),
			Certificate: db.Str(row[3]), Projects: []string{}})
	}
	return out, nil
}

// certificate reads one trusted certificate by fingerprint or unique prefix.
func (s *Service) certificate(ctx context.Context, prefix string) (api.Certificate, error) {
	fp, err := s.resolveFingerprint(ctx, prefix)
	if err != nil {
		return api.Certificate{}, err
	}
	cs, err := s.certificates(ctx, fp)
	if err != nil {
		return api.Certificate{}, err
	}
	if len(cs) == 0 {
		return api.Certificate{}, rest.NotFound("no trusted certificate %s", fp)
	}
	return cs[0], nil
}

// getCertificate is GET /1.0/certificates/{fingerprint} (or a unique prefix), with an ETag.
func (s *Service) getCertificate(w http.ResponseWriter, r *http.Request) error {
	c, err := s.certificate(r.Context(), r.PathValue("fingerprint"))
	if err != nil {
		return err
	}
	return rest.WriteOK(w, c, rest.ETag(c.Writable()))
}

// putCertificate is PUT (or, with patch, PATCH) /1.0/certificates/{fingerprint}: it renames
// a certificate. The certificate itself, its type and restrictions cannot change here
// (refused naming the field): an orch certificate is a client certificate of every project.
func (s *Service) putCertificate(patch bool) rest.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		cur, err := s.certificate(ctx, r.PathValue("fingerprint"))
		if err != nil {
			return err
		}
		if err := rest.CheckIfMatch(r, cur.Writable()); err != nil {
			return err
		}
		put := api.CertificatePut{}
		if patch {
			put = cur.Writable()
		}
		if err := rest.DecodeBody(r, &put); err != nil {
			return err
		}
		if err := checkCertificatePut(cur, put); err != nil {
			return err
		}
		if _, err := s.db.Exec(ctx, db.Stmt(`UPDATE certificates SET name = ? WHERE fingerprint = ?`, put.Name, cur.Fingerprint)); err != nil {
			return err
		}
		return rest.WriteOK(w, nil, "")
	}
}

// checkCertificatePut refuses what a PUT may not change, naming the field.
func checkCertificatePut(cur api.Certificate, put api.CertificatePut) error {
	if put.Name == "" {
		return rest.BadRequest("name: a certificate needs a name")
	}
	if put.Type != "" && put.Type != cur.Type {
		return rest.BadRequest("type %q: the type of a trusted certificate cannot change", put.Type)
	}
	if put.Certificate != "" && strings.TrimSpace(put.Certificate) != strings.TrimSpace(cur.Certificate) {
		return rest.BadRequest("certificate: replacing the certificate itself is not supported; add the new one and remove the old")
	}
	return checkUnrestricted(put.Restricted, put.Projects)
}

// checkUnrestricted refuses restricted certificates: orch has one project (default) and
// no per-certificate restrictions.
func checkUnrestricted(restricted bool, projects []string) error {
	if restricted {
		return rest.BadRequest("restricted: restricted certificates are not supported (orch has only the default project)")
	}
	for _, p := range projects {
		if p != DefaultProject {
			return rest.BadRequest("projects: no project %q (orch has only %q)", p, DefaultProject)
		}
	}
	return nil
}

// DefaultProject is the only project (LXD's default project).
const DefaultProject = "default"
