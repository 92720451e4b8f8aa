package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/netmux"
)

// ServeUnix serves the full API on path, root-only (0600).
func (s *Server) ServeUnix(path string) error {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%w: %s answers", ErrRunning, path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return err
	}
	s.unixSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return OnSocket(ctx)
		},
	}
	go s.unixSrv.Serve(ln)
	return nil
}

// serverTLS serves the cluster certificate once clustered, the member's own before.
func (s *Server) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if cid := s.Certs.Cluster(); cid != nil {
				return &cid.TLS, nil
			}
			c, err := s.Certs.Server()
			return &c, err
		},
	}
}

// PeerTLS is the client configuration for member-to-member traffic: it presents the cluster
// certificate and accepts only a peer presenting the same.
func PeerTLS(cid *Identity) *tls.Config {
	return api.TLSConfig(cid.TLS, cid.Fingerprint)
}

// isClusterCert reports whether cert is the cluster certificate.
func (s *Server) isClusterCert(cert *x509.Certificate) bool {
	cid := s.Certs.Cluster()
	return cid != nil && cert != nil && bytes.Equal(cert.Raw, cid.DER)
}

// StartNetwork opens the cluster port (API + raft) and, when core.https_address differs,
// the client API port.
func (s *Server) StartNetwork() error {
	addr := s.Members.ClusterAddress()
	if addr == "" {
		return errors.New("cluster.https_address is not set")
	}
	mux, err := netmux.Listen(addr, s.serverTLS(), s.isClusterCert, s.Log.With("component", "netmux"))
	if err != nil {
		return fmt.Errorf("listening on cluster address %s: %w", addr, err)
	}
	s.mux = mux
	s.muxSrv = s.newTLSServer()
	go s.muxSrv.Serve(mux.HTTP())
	return s.ReconcileClientListener()
}

func (s *Server) newTLSServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return OnTLS(ctx)
		},
	}
}

// ReconcileClientListener makes the client API listener match core.https_address.
func (s *Server) ReconcileClientListener() error {
	want := s.Members.ClientAddress()
	if want == s.Members.ClusterAddress() && s.mux != nil {
		want = ""
	}
	if want == s.clientAddr {
		return nil
	}
	if s.clientSrv != nil {
		s.clientSrv.Close()
		s.clientSrv, s.clientAddr = nil, ""
	}
	if want == "" {
		return nil
	}
	ln, err := tls.Listen("tcp", want, s.serverTLS())
	if err != nil {
		return fmt.Errorf("listening on core.https_address %s: %w", want, err)
	}
	s.clientSrv, s.clientAddr = s.newTLSServer(), want
	go s.clientSrv.Serve(ln)
	return nil
}

// StopNetwork closes the cluster and client ports.
func (s *Server) StopNetwork() {
	if s.muxSrv != nil {
		s.muxSrv.Close()
		s.muxSrv = nil
	}
	if s.mux != nil {
		s.mux.Close()
		s.mux = nil
	}
	if s.clientSrv != nil {
		s.clientSrv.Close()
		s.clientSrv, s.clientAddr = nil, ""
	}
}
