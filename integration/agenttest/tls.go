package agenttest

import (
	"crypto/tls"
	"testing"

	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
)

// NewClientCert makes a client certificate (common name cn) that nobody trusts yet; it
// returns it for TLS and as PEM for `trust add`.
func NewClientCert(tb testing.TB, cn string) (tls.Certificate, []byte) {
	tb.Helper()
	kp, err := pki.Generate(cn)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := kp.TLS()
	if err != nil {
		tb.Fatal(err)
	}
	return c, kp.CertPEM
}

// TLSClient is a mutual-TLS client of the API at addr, pinned to the cluster certificate
// fingerprint fp and presenting cert (no certificate at all when cert has no leaf). The
// test's cleanup closes it.
func TLSClient(tb testing.TB, addr, fp string, cert tls.Certificate) *api.Client {
	tb.Helper()
	cfg := api.TLSConfig(cert, fp)
	if len(cert.Certificate) == 0 {
		cfg.Certificates = nil
		cfg.GetClientCertificate = nil
	}
	cl := api.NewTLSClient(addr, cfg)
	tb.Cleanup(cl.Close)
	return cl
}

// TLSClient is a mutual-TLS client of a's API (at a.Addr), pinned to the cluster
// certificate a reports over its socket and presenting cert; see the function TLSClient.
func (a *Agent) TLSClient(tb testing.TB, cert tls.Certificate) *api.Client {
	tb.Helper()
	s, _ := Server(tb, a)
	return TLSClient(tb, a.Addr, s.Environment.CertificateFingerprint, cert)
}
