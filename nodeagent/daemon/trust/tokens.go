package trust

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/config"
	"orch/nodeagent/daemon/rest"
)

// Operations are the cluster's operations as certificate-add tokens use them.
type Operations interface {
	// Start starts a token operation for the async answer.
	Start(r *http.Request, t rest.Task) (api.Operation, error)
	// Find is a running token operation (of any ONLINE member) match accepts.
	Find(ctx context.Context, match func(api.Operation) bool) (api.Operation, bool)
	// Cancel ends an operation wherever it is.
	Cancel(ctx context.Context, id string) error
}

// postCertificateToken answers POST /1.0/certificates with "token": true (a trusted
// caller only): a token operation, as LXD's, whose metadata is what `lxc config trust add`
// prints and `lxc config trust list-tokens` lists; `lxc remote add NAME TOKEN` redeems it.
func (s *Service) postCertificateToken(w http.ResponseWriter, r *http.Request, req api.CertificatesPost) error {
	if !s.callers.Caller(r).Trusted {
		return api.Errorf(http.StatusForbidden, "not authorized: only a trusted client can issue certificate-add tokens")
	}
	if req.Name == "" {
		return rest.BadRequest("name: a certificate-add token needs the client's name")
	}
	if s.ops == nil || s.clusterFP == nil {
		return rest.Unavailable("certificate-add tokens need a clustered member")
	}
	ms, err := s.members.Local(r.Context())
	if err != nil {
		return err
	}
	addrs := make([]string, 0, len(ms))
	for _, m := range ms {
		addrs = append(addrs, m.Address)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	expires, err := s.tokenExpiry(r.Context())
	if err != nil {
		return err
	}
	meta := map[string]any{"request": map[string]any{"name": req.Name, "type": "client", "token": true},
		"secret": hex.EncodeToString(b), "fingerprint": s.clusterFP(), "addresses": addrs}
	if !expires.IsZero() {
		meta["expiresAt"] = expires.Format(time.RFC3339Nano) // the key lxc reads into the token
	}
	op, err := s.ops.Start(r, certTokenTask(meta, expires))
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// KeptCertificateToken is the kind of the certificate-add tokens' operations a member keeps
// across restarts.
const KeptCertificateToken = "certificate-token"

// certTokenTask is the operation of a certificate-add token (cancelled when redeemed or
// revoked; it expires at expires unless zero).
func certTokenTask(meta map[string]any, expires time.Time) rest.Task {
	return rest.Task{Class: api.OperationClassToken, Description: "Executing operation", Kept: KeptCertificateToken,
		Resources: map[string][]string{}, Metadata: meta, ExpiresAt: expires}
}

// Rebuild is the task of a kept certificate-add token's operation after a restart (ok
// false: not one).
func (s *Service) Rebuild(meta map[string]any, expires time.Time) (rest.Task, bool) {
	if secret, _ := meta["secret"].(string); secret == "" || meta["request"] == nil {
		return rest.Task{}, false
	}
	return certTokenTask(meta, expires), true
}

// redeemToken checks a password that is a certificate-add token: ok is false when it is
// not one (the trust password is then checked); a token no member has is refused. The
// token's operation is cancelled (one use) and the client's name returned.
func (s *Service) redeemToken(ctx context.Context, password string) (name string, ok bool, err error) {
	tok, derr := api.DecodeCertificateAddToken(password)
	if derr != nil || s.ops == nil {
		return "", false, nil
	}
	op, found := s.ops.Find(ctx, func(op api.Operation) bool {
		secret, _ := op.Metadata["secret"].(string)
		_, isCert := op.Metadata["request"]
		return isCert && subtle.ConstantTimeCompare([]byte(secret), []byte(tok.Secret)) == 1
	})
	if !found {
		if !tok.ExpiresAt.IsZero() && s.now != nil && s.now().After(tok.ExpiresAt) {
			return "", true, api.Errorf(http.StatusForbidden, "certificate-add token for %q expired at %s", tok.ClientName, tok.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return "", true, api.Errorf(http.StatusForbidden, "no valid certificate-add token: it was used, revoked or never issued")
	}
	if err := s.ops.Cancel(ctx, op.ID); err != nil {
		return "", true, err
	}
	if req, _ := op.Metadata["request"].(map[string]any); req != nil {
		name, _ = req["name"].(string)
	}
	return name, true, nil
}

// tokenExpiry is when a certificate-add token issued now expires (zero: never, the
// default, as LXD's core.remote_token_expiry).
func (s *Service) tokenExpiry(ctx context.Context) (time.Time, error) {
	if s.config == nil || s.now == nil {
		return time.Time{}, nil
	}
	cfg, err := s.config.GlobalConfig(ctx)
	if err != nil {
		return time.Time{}, err
	}
	v := cfg[config.RemoteTokenExpiry]
	if v == "" {
		return time.Time{}, nil
	}
	d, err := config.ParseExpiry(v)
	if err != nil {
		return time.Time{}, rest.BadRequest("%s: %v", config.RemoteTokenExpiry, err)
	}
	return s.now().Add(d).UTC().Truncate(time.Second), nil
}
