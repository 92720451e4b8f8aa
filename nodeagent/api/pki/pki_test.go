package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"net"
	"testing"
)

// TestGenerateMakesP256Keys: every member's and client's key is P-256, whose handshakes
// cost a third of P-384's (see Generate).
func TestGenerateMakesP256Keys(t *testing.T) {
	kp, err := Generate("test", "orch-cluster", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	key, ok := c.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("key is %T, want *ecdsa.PrivateKey", c.PrivateKey)
	}
	if key.Curve != elliptic.P256() {
		t.Fatalf("key curve is %s, want P-256", key.Curve.Params().Name)
	}
}

// BenchmarkHandshake is one mutual TLS handshake between two holders of Generate's
// certificates, both sides' CPU (the cost every member connection opens with).
func BenchmarkHandshake(b *testing.B) {
	pair := func() tls.Certificate {
		kp, err := Generate("bench", "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		c, err := kp.TLS()
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	sc, cc := pair(), pair()
	for b.Loop() {
		a, z := net.Pipe()
		srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{sc}, ClientAuth: tls.RequireAnyClientCert})
		cl := tls.Client(z, &tls.Config{Certificates: []tls.Certificate{cc}, InsecureSkipVerify: true})
		done := make(chan error, 1)
		go func() { done <- srv.Handshake() }()
		if err := cl.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		_ = a.Close()
		_ = z.Close()
	}
}
