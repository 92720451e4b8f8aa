package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestSaveModes: the key is 0600 and the certificate 0644 whatever the umask and whatever
// a crashed earlier Save left beside them (a world-readable base.key.tmp was reused, with
// its mode, as the key's temporary file), and Save leaves no other file.
func TestSaveModes(t *testing.T) {
	dir := t.TempDir()
	for _, stale := range []string{"server.key.tmp", "server.crt.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, stale), []byte("partial"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, stale), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	kp, err := Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Save(dir, "server"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"server.key": 0o600, "server.crt": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s has mode %v, want %v", name, st.Mode(), want)
		}
	}
	got, err := Load(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.KeyPEM) != string(kp.KeyPEM) || string(got.CertPEM) != string(kp.CertPEM) {
		t.Error("Load after Save does not return the saved pair")
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 4 { // server.key, server.crt and the two stale files, left alone
		t.Errorf("%s holds %d entries after Save, want 4", dir, len(des))
	}
}

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
