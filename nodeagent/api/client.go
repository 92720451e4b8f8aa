package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// Client talks to one nodeagent, over its unix socket or over HTTPS with mutual TLS.
type Client struct {
	http *http.Client
	base string
}

// SocketPath is the daemon's unix socket in the agent directory dir.
func SocketPath(dir string) string { return path.Join(dir, "unix.socket") }

// NewDialClient returns a client of the daemon's local API over the connections dial opens,
// e.g. an SSH connection's forwarding to the host's unix socket.
func NewDialClient(dial func(ctx context.Context) (net.Conn, error)) *Client {
	tr := &http.Transport{
		DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		MaxIdleConnsPerHost: 1,
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://unix"}
}

// NewUnixClient returns a client for the daemon's local socket.
func NewUnixClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConnsPerHost: 16,
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://unix"}
}

// ErrFingerprintMismatch is the error of a TLS connection (as errors.Is finds it through
// the HTTP client's wrapping) whose server presented another certificate than the pinned one.
var ErrFingerprintMismatch = errors.New("server certificate fingerprint does not match the pinned fingerprint")

// TLSConfig builds a client TLS configuration that presents cert and accepts only a server
// whose certificate has the given SHA-256 fingerprint (hex).
func TLSConfig(cert tls.Certificate, fingerprint string, nextProtos ...string) *tls.Config {
	want := strings.ToLower(strings.ReplaceAll(fingerprint, ":", ""))
	return &tls.Config{
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // the certificate is pinned below instead
		NextProtos:         nextProtos,
		MinVersion:         tls.VersionTLS12,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("server presented no certificate")
			}
			if got := Fingerprint(raw[0]); got != want {
				return fmt.Errorf("%w: the server presents %s, pinned is %s", ErrFingerprintMismatch, got, want)
			}
			return nil
		},
	}
}

// Fingerprint is the hex SHA-256 of a DER certificate, as LXD prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// NewTLSClient returns a client for https://address with a pinned server certificate.
func NewTLSClient(address string, cfg *tls.Config) *Client {
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		MaxIdleConnsPerHost: 16,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &Client{http: &http.Client{Transport: tr}, base: "https://" + address}
}

// WrapTransport wraps the client's HTTP transport, e.g. to add headers to every request
// and look at every answer; call it before the first request.
func (c *Client) WrapTransport(wrap func(http.RoundTripper) http.RoundTripper) {
	c.http.Transport = wrap(c.http.Transport)
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Call performs one request. body, when non-nil, is sent as JSON; the response metadata is
// decoded into out when non-nil. ifMatch, when set, is sent as If-Match. It returns the ETag.
func (c *Client) Call(ctx context.Context, method, path string, body, out any, ifMatch string) (string, error) {
	hdr := http.Header{}
	if ifMatch != "" {
		hdr.Set("If-Match", ifMatch)
	}
	resp, err := c.send(ctx, method, path, body, hdr)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return resp.Header.Get("ETag"), c.decode(ctx, resp, out)
}

// CallHeaders is Call with extra request headers and no ETag.
func (c *Client) CallHeaders(ctx context.Context, method, path string, body, out any, hdr http.Header) error {
	resp, err := c.send(ctx, method, path, body, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return c.decode(ctx, resp, out)
}

func (c *Client) send(ctx context.Context, method, path string, body any, hdr http.Header) (*http.Response, error) {
	if hdr == nil {
		hdr = http.Header{}
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
		hdr.Set("Content-Type", "application/json")
	}
	return c.Raw(ctx, method, path, rd, hdr)
}

// Raw sends a request with the given path (and query) and headers and returns the raw
// response; the caller closes its body.
func (c *Client) Raw(ctx context.Context, method, path string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return c.http.Do(req)
}

// decodeResponse reads a sync or error answer (an async one is not followed: Client.decode does).
func decodeResponse(resp *http.Response, out any) error {
	_, err := decodeEnvelope(resp, out, &Operation{})
	return err
}

// Server returns GET /1.0 and its ETag.
func (c *Client) Server(ctx context.Context) (*Server, string, error) {
	var s Server
	etag, err := c.Call(ctx, http.MethodGet, "/1.0", nil, &s, "")
	return &s, etag, err
}

// UpdateConfig replaces (PUT) the server configuration; etag, when set, makes it a
// compare-and-set.
func (c *Client) UpdateConfig(ctx context.Context, cfg map[string]string, etag string) error {
	_, err := c.Call(ctx, http.MethodPut, "/1.0", ServerPut{Config: cfg}, nil, etag)
	return err
}

// PatchConfig sets (PATCH) the given keys; an empty value unsets a key.
func (c *Client) PatchConfig(ctx context.Context, cfg map[string]string, etag string) error {
	_, err := c.Call(ctx, http.MethodPatch, "/1.0", ServerPut{Config: cfg}, nil, etag)
	return err
}

// Cluster returns GET /1.0/cluster.
func (c *Client) Cluster(ctx context.Context) (*Cluster, error) {
	var cl Cluster
	_, err := c.Call(ctx, http.MethodGet, "/1.0/cluster", nil, &cl, "")
	return &cl, err
}

// JoinCluster sends PUT /1.0/cluster: join this member to the cluster described by put.
func (c *Client) JoinCluster(ctx context.Context, put ClusterPut) error {
	_, err := c.Call(ctx, http.MethodPut, "/1.0/cluster", put, nil, "")
	return err
}

// Members returns every cluster member.
func (c *Client) Members(ctx context.Context) ([]ClusterMember, error) {
	var ms []ClusterMember
	_, err := c.Call(ctx, http.MethodGet, "/1.0/cluster/members?recursion=1", nil, &ms, "")
	return ms, err
}

// Member returns one cluster member.
func (c *Client) Member(ctx context.Context, name string) (*ClusterMember, error) {
	var m ClusterMember
	_, err := c.Call(ctx, http.MethodGet, "/1.0/cluster/members/"+url.PathEscape(name), nil, &m, "")
	return &m, err
}

// RemoveMember removes a member; force removes one that cannot be reached.
func (c *Client) RemoveMember(ctx context.Context, name string, force bool) error {
	path := "/1.0/cluster/members/" + url.PathEscape(name)
	if force {
		path += "?force=1"
	}
	_, err := c.Call(ctx, http.MethodDelete, path, nil, nil, "")
	return err
}

// CreateToken issues a one-use join token for a member called name.
func (c *Client) CreateToken(ctx context.Context, name string) (*ClusterMemberToken, error) {
	var op JoinTokenOperation
	if _, err := c.Call(ctx, http.MethodPost, "/1.0/cluster/members", ClusterMemberTokenPost{ServerName: name}, &op, ""); err != nil {
		return nil, err
	}
	tok := op.Token()
	return &ClusterMemberToken{ServerName: tok.ServerName, ExpiresAt: tok.ExpiresAt, Token: tok.Encode()}, nil
}

// Tokens lists outstanding join tokens (without their secrets).
func (c *Client) Tokens(ctx context.Context) ([]ClusterMemberToken, error) {
	var ts []ClusterMemberToken
	_, err := c.Call(ctx, http.MethodGet, "/1.0/cluster/tokens", nil, &ts, "")
	return ts, err
}

// RevokeToken deletes the outstanding join token issued for name.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	_, err := c.Call(ctx, http.MethodDelete, "/1.0/cluster/tokens/"+url.PathEscape(name), nil, nil, "")
	return err
}

// Init bootstraps or joins this member from a preseed (local socket only).
func (c *Client) Init(ctx context.Context, req InitPost) error {
	_, err := c.Call(ctx, http.MethodPost, "/internal/init", req, nil, "")
	return err
}

// JoinInfo asks a cluster member which member-specific keys a joining member supplies.
func (c *Client) JoinInfo(ctx context.Context, req ClusterJoinInfoPost) (*Cluster, error) {
	var out Cluster
	if _, err := c.Call(ctx, http.MethodPost, "/internal/cluster/join-info", req, &out, ""); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddCertificate trusts a client certificate.
func (c *Client) AddCertificate(ctx context.Context, cert CertificatesPost) error {
	_, err := c.Call(ctx, http.MethodPost, "/1.0/certificates", cert, nil, "")
	return err
}

// Certificates lists trusted certificates.
func (c *Client) Certificates(ctx context.Context) ([]Certificate, error) {
	var cs []Certificate
	_, err := c.Call(ctx, http.MethodGet, "/1.0/certificates?recursion=1", nil, &cs, "")
	return cs, err
}

// Database returns what `cluster list-database` prints, from the running daemon.
func (c *Client) Database(ctx context.Context) (*DatabaseInfo, error) {
	var d DatabaseInfo
	_, err := c.Call(ctx, http.MethodGet, "/internal/database", nil, &d, "")
	return &d, err
}
