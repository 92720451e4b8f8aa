package daemon

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

type ctxKey int

const originKey ctxKey = iota

// serveUnix serves the full API on DIR/unix.socket, root-only (0600).
func (d *Daemon) serveUnix() error {
	path := SocketPath(d.cfg.Dir)
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
	d.unixSrv = &http.Server{
		Handler:           d.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, originKey, originUnix)
		},
	}
	go d.unixSrv.Serve(ln)
	return nil
}

// serverTLS serves the cluster certificate once clustered, the member's own before.
func (d *Daemon) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if cid := d.cluster.Load(); cid != nil {
				return &cid.tls, nil
			}
			c, err := d.serverPair().TLS()
			return &c, err
		},
	}
}

// peerTLS is the client configuration for member-to-member traffic: it presents the cluster
// certificate and accepts only a peer presenting the same.
func (d *Daemon) peerTLS(cid *clusterIdentity) *tls.Config {
	return api.TLSConfig(cid.tls, cid.fingerprint)
}

// isClusterCert reports whether cert is the cluster certificate.
func (d *Daemon) isClusterCert(cert *x509.Certificate) bool {
	cid := d.cluster.Load()
	return cid != nil && cert != nil && bytes.Equal(cert.Raw, cid.der)
}

// startNetwork opens the cluster port (API + raft) and, when core.https_address differs,
// the client API port.
func (d *Daemon) startNetwork() error {
	addr := d.clusterAddress()
	if addr == "" {
		return errors.New("cluster.https_address is not set")
	}
	mux, err := netmux.Listen(addr, d.serverTLS(), d.isClusterCert, d.log.With("component", "netmux"))
	if err != nil {
		return fmt.Errorf("listening on cluster address %s: %w", addr, err)
	}
	d.mux = mux
	d.muxSrv = d.newTLSServer()
	go d.muxSrv.Serve(mux.HTTP())
	return d.reconcileClientListener()
}

func (d *Daemon) newTLSServer() *http.Server {
	return &http.Server{
		Handler:           d.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, originKey, originTLS)
		},
	}
}

// reconcileClientListener makes the client API listener match core.https_address.
func (d *Daemon) reconcileClientListener() error {
	want, _ := d.local.Get("core.https_address")
	if want == d.clusterAddress() && d.mux != nil {
		want = ""
	}
	if want == d.clientAddr {
		return nil
	}
	if d.clientSrv != nil {
		d.clientSrv.Close()
		d.clientSrv, d.clientAddr = nil, ""
	}
	if want == "" {
		return nil
	}
	ln, err := tls.Listen("tcp", want, d.serverTLS())
	if err != nil {
		return fmt.Errorf("listening on core.https_address %s: %w", want, err)
	}
	d.clientSrv, d.clientAddr = d.newTLSServer(), want
	go d.clientSrv.Serve(ln)
	return nil
}

func (d *Daemon) stopNetwork() {
	if d.muxSrv != nil {
		d.muxSrv.Close()
		d.muxSrv = nil
	}
	if d.mux != nil {
		d.mux.Close()
		d.mux = nil
	}
	if d.clientSrv != nil {
		d.clientSrv.Close()
		d.clientSrv, d.clientAddr = nil, ""
	}
}
