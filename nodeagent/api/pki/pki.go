// Package pki creates, stores and loads the agent's certificates: the member's server
// certificate (DIR/server.crt) and the cluster certificate shared by every member
// (DIR/cluster.crt). As in LXD, a clustered member's server certificate is the cluster
// certificate (the daemon writes both files alike at bootstrap and join); an uninitialised
// member has a server certificate of its own. It lives under nodeagent/api because orch
// uses it too (its client certificate, fingerprints); it imports nothing of the agent.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"orch/internal/atomicfile"
	"orch/nodeagent/api"
)

// KeyPair is a certificate and its private key, both PEM.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// ClusterDNSName is the DNS name every cluster certificate carries first. LXD's clients
// (lxc, pylxd through Go's and Python's TLS) verify a pinned server certificate against the
// first DNS name it holds, whichever member address they dialled: a certificate naming only
// the bootstrap member's IP fails on every other member ("certificate is valid for A, not B").
const ClusterDNSName = "orch-cluster"

// Generate creates a self-signed ECDSA P-256 certificate valid for ten years, usable as
// both server and client certificate, naming the given hosts (DNS names or IPs).
//
// P-256, not P-384 (LXD's): Go's P-256 is assembly on amd64 and arm64, its P-384 generic.
// A mutual TLS 1.3 handshake between two members cost 4.6 ms of CPU with P-384 keys and
// 1.5 ms with P-256 (BenchmarkHandshake; the key exchange unchanged), a key 167 µs against
// 14 µs: every join, heartbeat connection, forwarded request and raft connection opens
// with a handshake, and forming a 200-member cluster spent more CPU on P-384 than on
// anything else the joins did. Certificates made before (P-384) keep working: TLS takes
// either.
func Generate(commonName string, hosts ...string) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return KeyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"orch"}, CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return KeyPair{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Save writes base.crt (0644) and base.key (0600) in dir, atomically and durably each
// (the key first): a crash never leaves a truncated file, and the key is never readable
// by others, not even while it is written.
func (k KeyPair) Save(dir, base string) error {
	if err := atomicfile.Write(filepath.Join(dir, base+".key"), k.KeyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, base+".crt"), k.CertPEM, 0o644)
}

// Load reads base.crt and base.key from dir.
func Load(dir, base string) (KeyPair, error) {
	c, err := os.ReadFile(filepath.Join(dir, base+".crt"))
	if err != nil {
		return KeyPair{}, err
	}
	k, err := os.ReadFile(filepath.Join(dir, base+".key"))
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{CertPEM: c, KeyPEM: k}, nil
}

// LoadOrGenerate loads base.crt/key from dir or creates them.
func LoadOrGenerate(dir, base, commonName string, hosts ...string) (KeyPair, error) {
	kp, err := Load(dir, base)
	if err == nil {
		return kp, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return KeyPair{}, err
	}
	if kp, err = Generate(commonName, hosts...); err != nil {
		return KeyPair{}, err
	}
	return kp, kp.Save(dir, base)
}

// TLS returns the pair as a tls.Certificate.
func (k KeyPair) TLS() (tls.Certificate, error) {
	return tls.X509KeyPair(k.CertPEM, k.KeyPEM)
}

// Fingerprint returns the certificate's SHA-256 fingerprint in hex.
func (k KeyPair) Fingerprint() (string, error) {
	return FingerprintPEM(k.CertPEM)
}

// FingerprintPEM returns the SHA-256 fingerprint of a PEM certificate.
func FingerprintPEM(certPEM []byte) (string, error) {
	der, err := DER(certPEM)
	if err != nil {
		return "", err
	}
	return api.Fingerprint(der), nil
}

// DER returns the first certificate of a PEM block.
func DER(certPEM []byte) ([]byte, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	return block.Bytes, nil
}
