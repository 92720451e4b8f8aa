// Package clientstore keeps orch's own state on the operator's machine: its client
// certificate (trusted by every cluster it manages) and each cluster's pinned certificate,
// keyed by the certificate's fingerprint, so one operator can drive several clusters.
// The directory is $ORCH_CONFIG, else ~/.config/orch.
package clientstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"orch/internal/atomicfile"
	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
)

// ErrUnknownCluster means no pinned certificate matches.
var ErrUnknownCluster = errors.New("no pinned certificate for this cluster: run `orch up` first")

// Store is orch's state directory.
type Store struct {
	dir  string
	mu   sync.Mutex
	cert *tls.Certificate
	pem  []byte
}

// DefaultDir is $ORCH_CONFIG, else ~/.config/orch.
func DefaultDir() string {
	if d := os.Getenv("ORCH_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".orch"
	}
	return filepath.Join(home, ".config", "orch")
}

// Open opens (creating, mode 0700) the state directory.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "clusters"), 0o700); err != nil {
		return nil, fmt.Errorf("orch state directory %s: %w", dir, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// ClientCertificate returns orch's client certificate, creating it on first use.
func (s *Store) ClientCertificate() (tls.Certificate, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert != nil {
		return *s.cert, s.pem, nil
	}
	kp, err := pki.LoadOrGenerate(s.dir, "client", "orch")
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("orch client certificate in %s: %w", s.dir, err)
	}
	c, err := kp.TLS()
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	s.cert, s.pem = &c, kp.CertPEM
	return c, kp.CertPEM, nil
}

// ClientFingerprint is the fingerprint of orch's client certificate.
func (s *Store) ClientFingerprint() (string, error) {
	_, p, err := s.ClientCertificate()
	if err != nil {
		return "", err
	}
	return pki.FingerprintPEM(p)
}

// PinCluster saves a cluster's certificate; it returns the fingerprint it is keyed by.
func (s *Store) PinCluster(certPEM []byte) (string, error) {
	fp, err := pki.FingerprintPEM(certPEM)
	if err != nil {
		return "", fmt.Errorf("cluster certificate: %w", err)
	}
	path := filepath.Join(s.dir, "clusters", fp+".crt")
	return fp, atomicfile.Write(path, certPEM, 0o600)
}

// Pinned reports whether a cluster fingerprint is pinned.
func (s *Store) Pinned(fp string) bool {
	_, err := os.Stat(filepath.Join(s.dir, "clusters", strings.ToLower(fp)+".crt"))
	return err == nil
}

// Clusters lists the pinned clusters' fingerprints.
func (s *Store) Clusters() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "clusters"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".crt"); ok {
			out = append(out, n)
		}
	}
	return out, nil
}

// Client returns an API client for a member address, pinned to the cluster fingerprint fp
// and presenting orch's client certificate.
func (s *Store) Client(address, fp string) (*api.Client, error) {
	if !s.Pinned(fp) {
		return nil, ErrUnknownCluster
	}
	cert, _, err := s.ClientCertificate()
	if err != nil {
		return nil, err
	}
	return api.NewTLSClient(address, api.TLSConfig(cert, fp)), nil
}

// ClientAny returns an API client for a member address that accepts any pinned cluster
// certificate; the fingerprint it met is known after the first request (see Fingerprint).
func (s *Store) ClientAny(address string) (*api.Client, error) {
	cert, _, err := s.ClientCertificate()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // the certificate is checked against the pinned set below
		MinVersion:         tls.VersionTLS12,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server presented no certificate")
			}
			if fp := api.Fingerprint(raw[0]); !s.Pinned(fp) {
				return fmt.Errorf("%w (certificate %.16s…)", ErrUnknownCluster, fp)
			}
			return nil
		},
	}
	return api.NewTLSClient(address, cfg), nil
}
