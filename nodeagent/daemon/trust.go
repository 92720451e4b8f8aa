package daemon

import (
	"context"
	"net/http"
	"sync"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/config"
	"orch/nodeagent/pki"
)

// trustCache remembers which client certificate fingerprints are trusted. A miss is looked
// up in the database (linearizably) and remembered briefly, so an unknown client cannot
// make every request a database round trip.
type trustCache struct {
	mu      sync.Mutex
	trusted map[string]bool
	misses  map[string]time.Time
}

const missTTL = 2 * time.Second

func newTrustCache() *trustCache {
	return &trustCache{trusted: map[string]bool{}, misses: map[string]time.Time{}}
}

func (t *trustCache) cached(fp string) (trusted, known bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.trusted[fp] {
		return true, true
	}
	if at, ok := t.misses[fp]; ok && time.Since(at) < missTTL {
		return false, true
	}
	return false, false
}

func (t *trustCache) remember(fp string, trusted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if trusted {
		t.trusted[fp] = true
		delete(t.misses, fp)
	} else {
		t.misses[fp] = time.Now()
	}
}

// isTrusted reports whether a client certificate fingerprint is in the cluster's trust store.
func (d *Daemon) isTrusted(ctx context.Context, fp string) bool {
	if ok, known := d.trust.cached(fp); known {
		return ok
	}
	if d.store() == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := d.query(ctx, `SELECT 1 FROM certificates WHERE fingerprint = ?`, fp)
	if err != nil {
		return false
	}
	d.trust.remember(fp, len(rows) > 0)
	return len(rows) > 0
}

// postCertificate trusts a client certificate: a trusted caller may add any; an untrusted
// one must give the trust password and adds its own (LXD's `lxc remote add`).
func (d *Daemon) postCertificate(w http.ResponseWriter, r *http.Request) error {
	var req api.CertificatesPost
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	c := d.callerOf(r)
	if req.Certificate == "" && c.fp != "" && r.TLS != nil {
		req.Certificate = string(pemOf(r.TLS.PeerCertificates[0].Raw))
	}
	fp, err := pki.FingerprintPEM([]byte(req.Certificate))
	if err != nil {
		return badRequest("certificate: %v", err)
	}
	if !c.trusted {
		if err := d.checkTrustPassword(ctx, req.Password); err != nil {
			return err
		}
		if fp != c.fp {
			return api.Errorf(http.StatusForbidden, "an untrusted client can only add its own certificate")
		}
	}
	if req.Type == "" {
		req.Type = "client"
	}
	if req.Type != "client" {
		return badRequest("type %q: only \"client\" certificates can be added", req.Type)
	}
	if _, err := d.exec(ctx, storeStmt(`INSERT INTO certificates(fingerprint, name, type, certificate) VALUES(?, ?, ?, ?)
		ON CONFLICT(fingerprint) DO UPDATE SET name = excluded.name`, fp, req.Name, req.Type, req.Certificate)); err != nil {
		return err
	}
	d.trust.remember(fp, true)
	return writeOK(w, nil, "")
}

func (d *Daemon) checkTrustPassword(ctx context.Context, pw string) error {
	if d.store() == nil {
		return ErrNotInitialised
	}
	rows, err := d.query(ctx, `SELECT value FROM config WHERE key = 'core.trust_password'`)
	if err != nil {
		return err
	}
	if len(rows) == 0 || pw == "" || !config.CheckPassword(str(rows[0][0]), pw) {
		return api.Errorf(http.StatusForbidden, "not authorized: wrong or missing trust password")
	}
	return nil
}

func (d *Daemon) getCertificates(w http.ResponseWriter, r *http.Request) error {
	rows, err := d.query(r.Context(), `SELECT fingerprint, name, type, certificate FROM certificates ORDER BY name, fingerprint`)
	if err != nil {
		return err
	}
	out := []api.Certificate{}
	for _, row := range rows {
		out = append(out, api.Certificate{Fingerprint: str(row[0]), Name: str(row[1]), Type: str(row[2]), Certificate: str(row[3])})
	}
	return writeOK(w, out, "")
}
