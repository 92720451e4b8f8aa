package security

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// join makes a join the cluster of via with the trust password.
func join(t *testing.T, via, a *agenttest.Agent) {
	t.Helper()
	cl := a.Local()
	defer cl.Close()
	err := cl.Init(ctxT(t, time.Minute), api.InitPost{Preseed: api.Preseed{Cluster: &api.ClusterPut{Enabled: true,
		ServerName: a.Name, ServerAddress: a.Addr, ClusterAddress: via.Addr, ClusterPassword: trustPassword,
		ClusterCertificate: agenttest.ClusterCert(t, via)}}})
	if err != nil {
		t.Fatalf("%s: joining through %s: %v", a.Name, via.Name, err)
	}
}

// servedAsTrusted checks that cl is served as a trusted client by its member: GET /1.0
// says trusted and a trusted-only endpoint answers.
func servedAsTrusted(t *testing.T, cl *api.Client) error {
	s, _, err := cl.Server(ctxT(t, 10*time.Second))
	if err != nil {
		return err
	}
	if s.Auth != "trusted" {
		return fmt.Errorf("GET /1.0 says %q", s.Auth)
	}
	if code := rawStatus(t, cl, "GET", "/1.0/cluster/members", ""); code != http.StatusOK {
		return fmt.Errorf("GET /1.0/cluster/members: status %d", code)
	}
	return nil
}

// TestTrustRemoveRefusedEverywhere: a trusted client that every member has served (and so
// holds in its trust cache) is refused by every member right after `nodeagent trust
// remove` on one of them, with no waiting: the removal is replicated and each member's
// cache is dropped before the command returns.
func TestTrustRemoveRefusedEverywhere(t *testing.T) {
	ms := []*agenttest.Agent{startAgent(t, "rev1"), startAgent(t, "rev2"), startAgent(t, "rev3")}
	bootstrap(t, ms[0])
	for _, m := range ms[1:] {
		join(t, ms[0], m)
	}
	cert, certPEM := agenttest.NewClientCert(t, "security test client")
	other, otherPEM := agenttest.NewClientCert(t, "security test client")
	local := ms[0].Local()
	defer local.Close()
	for name, p := range map[string][]byte{"revokee": certPEM, "keeper": otherPEM} {
		if err := local.AddCertificate(ctxT(t, 10*time.Second), api.CertificatesPost{Name: name, Type: "client", Certificate: string(p)}); err != nil {
			t.Fatalf("trusting %s: %v", name, err)
		}
	}
	clients := make([]*api.Client, len(ms))
	keepers := make([]*api.Client, len(ms))
	for i, m := range ms {
		clients[i], keepers[i] = m.TLSClient(t, cert), m.TLSClient(t, other)
		wait.For(t, 10*time.Second, "the client served as trusted by "+m.Name, func() error { return servedAsTrusted(t, clients[i]) })
	}
	fp := fingerprintOf(t, cert)
	// Removed through the last member (a follower or the leader, either must work), by the
	// 12-digit prefix `trust list` shows.
	if r := ms[2].Run("trust", "remove", fp[:12]); r.Code != 0 {
		t.Fatalf("nodeagent trust remove %s: exit %d\n%s%s", fp[:12], r.Code, r.Stdout, r.Stderr)
	}
	for i, m := range ms {
		s, _, err := clients[i].Server(ctxT(t, 10*time.Second))
		if err != nil || s.Auth != "untrusted" {
			t.Errorf("%s: GET /1.0 right after the removal: auth %q, err %v; want untrusted", m.Name, s.Auth, err)
		}
		for _, path := range []string{"/1.0/cluster/members", "/1.0/certificates"} {
			if code := rawStatus(t, clients[i], "GET", path, ""); code != http.StatusForbidden {
				t.Errorf("%s: GET %s right after the removal: status %d, want 403", m.Name, path, code)
			}
		}
		if err := servedAsTrusted(t, keepers[i]); err != nil {
			t.Errorf("%s: another trusted client is refused after the removal: %v", m.Name, err)
		}
	}
	certs, err := local.Certificates(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if c.Fingerprint == fp {
			t.Errorf("the removed certificate is still listed: %+v", c)
		}
	}
	// Removing it again, or an unknown or too short fingerprint, is an error naming it.
	for arg, want := range map[string]error{fp: api.ErrNotFound, "0123456789ab": api.ErrNotFound, "abc": api.ErrBadRequest} {
		_, err := local.Call(ctxT(t, 10*time.Second), http.MethodDelete, "/1.0/certificates/"+arg, nil, nil, "")
		if !errors.Is(err, want) {
			t.Errorf("DELETE /1.0/certificates/%s: %v, want %v", arg, err, want)
		}
	}
	// A removed client cannot remove others, and trusting it again works at once everywhere.
	if code := rawStatus(t, clients[0], "DELETE", "/1.0/certificates/"+fingerprintOf(t, other), ""); code != http.StatusForbidden {
		t.Errorf("a removed client deleting a certificate: status %d, want 403", code)
	}
	if err := local.AddCertificate(ctxT(t, 10*time.Second), api.CertificatesPost{Name: "back", Type: "client", Certificate: string(certPEM)}); err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if err := servedAsTrusted(t, clients[i]); err != nil {
			t.Errorf("%s: right after trusting the client again: %v", m.Name, err)
		}
	}
}

// fingerprintOf is the fingerprint of a client certificate.
func fingerprintOf(t *testing.T, c tls.Certificate) string {
	t.Helper()
	if len(c.Certificate) == 0 {
		t.Fatal("no certificate")
	}
	return api.Fingerprint(c.Certificate[0])
}
