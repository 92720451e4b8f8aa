package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/nodeagent/daemon/serve"

	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
	"orch/nodeagent/config"
	"orch/nodeagent/store"
)

// The cluster API's request bodies, fuzzed through the real handlers of a bootstrapped
// single-member daemon (real raft, real SQLite). Every input must be answered with a
// success or a 4xx error that names what is wrong — never a panic, never a 5xx — and a
// refused request must change nothing in the replicated database.

// fuzzTrustPassword is the trust password of the fuzzed daemon.
const fuzzTrustPassword = "fuzz-trust-pw"

// fuzzTimings are short raft timings for a single in-process member.
func fuzzTimings() store.Timings {
	t := store.DefaultTimings()
	t.Heartbeat, t.Election, t.LeaderLease, t.Commit = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 5*time.Millisecond
	return t
}

// newFuzzDaemon starts a daemon in a temporary directory and bootstraps it as a one-member
// cluster on a loopback port; it is stopped in cleanup.
func newFuzzDaemon(tb testing.TB) *Daemon {
	tb.Helper()
	dir, err := os.MkdirTemp("", "fuzzd-")
	if err != nil {
		tb.Fatal(err)
	}
	d, err := New(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timings: fuzzTimings()})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		<-done
		d.local.Close()
		_ = os.RemoveAll(dir)
	})
	cl := api.NewUnixClient(SocketPath(dir))
	defer cl.Close()
	wait.For(tb, 10*time.Second, "the daemon's socket", func() error { _, _, err := cl.Server(ctx); return err })
	init := api.InitPost{Preseed: api.Preseed{
		Config:  map[string]string{"core.https_address": freeLoopback(tb), "core.trust_password": fuzzTrustPassword},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: "fuzz1"},
	}}
	if err := cl.Init(ctx, init); err != nil {
		tb.Fatalf("bootstrapping the fuzz daemon: %v", err)
	}
	return d
}

func freeLoopback(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// fuzzCaller is who sends a fuzzed request: the local socket (root) or a TLS client with a
// certificate the cluster does not trust.
type fuzzCaller struct {
	cert *x509.Certificate // nil means the local socket
}

func untrustedCaller(tb testing.TB) fuzzCaller {
	kp, err := pki.Generate("fuzz client")
	if err != nil {
		tb.Fatal(err)
	}
	c, err := kp.TLS()
	if err != nil {
		tb.Fatal(err)
	}
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		tb.Fatal(err)
	}
	return fuzzCaller{cert: x}
}

// serveAs runs one request through the daemon's routes as caller and returns the status and
// the decoded response.
func serveAs(d *Daemon, h http.Handler, who fuzzCaller, method, path string, body []byte, hdr http.Header) (int, api.Response) {
	ctx := serve.OnSocket(context.Background())
	if who.cert != nil {
		ctx = serve.OnTLS(context.Background())
	}
	req := httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	if who.cert != nil {
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{who.cert}}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp api.Response
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec.Code, resp
}

// dbState is a dump of the replicated tables a request could change.
func dbState(tb testing.TB, d *Daemon) string {
	tb.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT key, value FROM config ORDER BY key`,
		`SELECT key, value FROM meta WHERE key IN ('config_version', 'schema_version') ORDER BY key`,
		`SELECT name, address, client_address FROM members ORDER BY name`,
		`SELECT name, secret_hash, expires_at FROM tokens ORDER BY name`,
		`SELECT fingerprint, name, type FROM certificates ORDER BY fingerprint`,
	} {
		rows, err := d.query(context.Background(), q)
		if err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
		fmt.Fprintf(&b, "%s\n%v\n", q, rows)
	}
	return b.String()
}

// checkAnswer fails on a panic-shaped answer: a 5xx, or an error without a message.
func checkAnswer(t *testing.T, what string, body []byte, code int, resp api.Response) {
	t.Helper()
	if code >= 500 {
		t.Fatalf("%s %q: status %d: %s", what, body, code, resp.Error)
	}
	if code != http.StatusOK && strings.TrimSpace(resp.Error) == "" {
		t.Fatalf("%s %q: status %d without an error message", what, body, code)
	}
}

// checkUnchanged fails when a refused request changed the replicated database.
func checkUnchanged(t *testing.T, d *Daemon, what string, body []byte, code int, before string) {
	t.Helper()
	if code == http.StatusOK {
		return
	}
	if after := dbState(t, d); after != before {
		t.Fatalf("%s %q was refused (%d) but changed the database:\nbefore %s\nafter %s", what, body, code, before, after)
	}
}

// touchesLocalKeys reports whether a config body sets a member-local key (an address): a
// fuzzer must not make the daemon listen on arbitrary addresses.
func touchesLocalKeys(body []byte) bool {
	var put struct {
		Config map[string]any `json:"config"`
	}
	if json.Unmarshal(body, &put) != nil {
		return bytes.Contains(body, []byte("address"))
	}
	for k := range put.Config {
		if key, err := config.Lookup(k); err == nil && key.Scope == config.Local {
			return true
		}
	}
	return false
}

func FuzzServerConfigBody(f *testing.F) {
	f.Add([]byte(`{"config":{"user.a":"1"}}`), true, false)
	f.Add([]byte(`{"config":{"user.k":"'; DROP TABLE members; --"}}`), false, true)
	f.Add([]byte(`{"config":{"cluster.max_voters":"4"}}`), false, false)
	f.Add([]byte(`{"config":{"cluster.offline_threshold":"x"}}`), false, false)
	f.Add([]byte(`{"config":{"core.trust_password":"new"}}`), false, false)
	f.Add([]byte(`{"config":{"nosuch.key":"1"}}`), true, false)
	f.Add([]byte(`{"config":{"user.":"1"}}`), false, false)
	f.Add([]byte(`{"config":null,"extra":1}`), false, false)
	f.Add([]byte(`{"config":{"user.a":1}}`), false, false)
	f.Add([]byte(`[`), true, true)
	d := newFuzzDaemon(f)
	h := d.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, put, ifMatch bool) {
		if touchesLocalKeys(body) {
			t.Skip("member-local keys open listeners")
		}
		method := http.MethodPatch
		if put {
			method = http.MethodPut
		}
		hdr := http.Header{}
		if ifMatch {
			cs, err := d.conf.Full(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			hdr.Set("If-Match", cs.ETag)
		}
		before := dbState(t, d)
		code, resp := serveAs(d, h, fuzzCaller{}, method, "/1.0", body, hdr)
		checkAnswer(t, method+" /1.0", body, code, resp)
		checkUnchanged(t, d, method+" /1.0", body, code, before)
		if code == http.StatusOK {
			checkUserKeysApplied(t, d, body)
		}
	})
}

// checkUserKeysApplied checks that every user.* key of an accepted body reads back as sent.
func checkUserKeysApplied(t *testing.T, d *Daemon, body []byte) {
	t.Helper()
	var put api.ServerPut
	// The daemon decodes the first JSON document and ignores what follows (reported:
	// trailing data is accepted), so read it the same way.
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&put); err != nil {
		t.Fatalf("accepted a body encoding/json refuses: %q: %v", body, err)
	}
	cs, err := d.conf.Full(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range put.Config {
		if strings.HasPrefix(k, "user.") && cs.Config[k] != v {
			t.Fatalf("%q accepted but %s reads %q, want %q", body, k, cs.Config[k], v)
		}
	}
}

func FuzzTokenBody(f *testing.F) {
	f.Add([]byte(`{"server_name":"new1"}`))
	f.Add([]byte(`{"server_name":"'; DROP TABLE tokens; --"}`))
	f.Add([]byte(`{"server_name":"fuzz1"}`))
	f.Add([]byte(`{"server_name":""}`))
	f.Add([]byte(`{"server_name":"a/b"}`))
	f.Add([]byte(`{"server_name":1}`))
	f.Add([]byte(`{}`))
	d := newFuzzDaemon(f)
	h := d.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		before := dbState(t, d)
		code, resp := serveAs(d, h, fuzzCaller{}, http.MethodPost, "/1.0/cluster/members", body, nil)
		if code != http.StatusAccepted { // a token is an operation (202), as LXD's
			checkAnswer(t, "POST /1.0/cluster/members", body, code, resp)
			checkUnchanged(t, d, "POST /1.0/cluster/members", body, code, before)
			return
		}
		var op struct {
			Class    string                 `json:"class"`
			Metadata api.JoinTokenOperation `json:"metadata"`
		}
		if err := json.Unmarshal(resp.Metadata, &op); err != nil || op.Class != api.OperationClassToken {
			t.Fatalf("%q: token operation: %v %s", body, err, resp.Metadata)
		}
		jt, err := api.DecodeJoinToken(op.Metadata.Token().Encode())
		if err != nil || jt.ServerName != op.Metadata.ServerName {
			t.Fatalf("%q: issued token does not decode to its member: %v %+v", body, err, jt)
		}
		rows, err := d.query(context.Background(), `SELECT secret_hash FROM tokens WHERE name = ?`, jt.ServerName)
		if err != nil || len(rows) != 1 || str(rows[0][0]) == jt.Secret {
			t.Fatalf("%q: token %q not stored hashed: %v %v", body, jt.ServerName, rows, err)
		}
	})
}

func FuzzCertificateBody(f *testing.F) {
	pemCert := string(pemOf(untrustedCaller(f).cert.Raw))
	for _, seed := range []api.CertificatesPost{
		{Name: "c", Type: "client", Certificate: pemCert},
		{Name: "'; DROP TABLE certificates; --", Certificate: pemCert},
		{Name: "c", Type: "server", Certificate: pemCert},
		{Name: "c", Certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{Name: "self", Password: fuzzTrustPassword},
		{Name: "self", Password: "wrong"},
		{Name: "other", Password: fuzzTrustPassword, Certificate: pemCert},
	} {
		b, _ := json.Marshal(seed)
		f.Add(b, false)
		f.Add(b, true)
	}
	d := newFuzzDaemon(f)
	h := d.srv.Handler()
	stranger := untrustedCaller(f)
	f.Fuzz(func(t *testing.T, body []byte, untrusted bool) {
		who := fuzzCaller{}
		if untrusted {
			who = stranger
		}
		before := dbState(t, d)
		code, resp := serveAs(d, h, who, http.MethodPost, "/1.0/certificates", body, nil)
		checkAnswer(t, "POST /1.0/certificates", body, code, resp)
		checkUnchanged(t, d, "POST /1.0/certificates", body, code, before)
		if code == http.StatusOK && untrusted {
			var req api.CertificatesPost
			_ = json.Unmarshal(body, &req)
			if req.Password != fuzzTrustPassword {
				t.Fatalf("an untrusted client was trusted without the trust password: %q", body)
			}
			stranger = untrustedCaller(t) // this one is trusted now
		}
		if strings.Contains(resp.Error, fuzzTrustPassword) {
			t.Fatalf("the error repeats the trust password: %q", resp.Error)
		}
	})
}

func FuzzAcceptBody(f *testing.F) {
	d := newFuzzDaemon(f)
	for _, seed := range []acceptRequest{
		{Name: "j1", Address: "127.0.0.1:1", Password: "wrong", Version: d.version},
		{Name: "j2", Address: "127.0.0.1:2", TokenSecret: "00", Version: d.version},
		{Name: "'; DROP TABLE members; --", Address: "x", Password: fuzzTrustPassword, Version: d.version},
		{Name: "fuzz1", Address: d.clusterAddress(), Password: fuzzTrustPassword, Version: d.version},
		{Name: "j3", Address: "127.0.0.1:3", Password: fuzzTrustPassword},
		{Name: "j4", Address: "127.0.0.1:4", Password: fuzzTrustPassword, Version: d.version,
			MemberConfig: []api.MemberConfigKey{{Entity: "storage-pool", Name: "p", Key: "source", Value: "/x"}}},
	} {
		b, _ := json.Marshal(seed)
		f.Add(b)
	}
	h := d.srv.Handler()
	stranger := untrustedCaller(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := dbState(t, d)
		code, resp := serveAs(d, h, stranger, http.MethodPost, "/internal/cluster/accept", body, nil)
		checkAnswer(t, "POST /internal/cluster/accept", body, code, resp)
		checkUnchanged(t, d, "POST /internal/cluster/accept", body, code, before)
		if code == http.StatusOK {
			var req acceptRequest
			_ = json.Unmarshal(body, &req)
			if req.Password != fuzzTrustPassword {
				t.Fatalf("a joiner was accepted without the trust password or a token: %q", body)
			}
		}
		if strings.Contains(resp.Error, fuzzTrustPassword) {
			t.Fatalf("the error repeats the trust password: %q", resp.Error)
		}
	})
}

// FuzzInitBody fuzzes POST /internal/init and PUT /1.0/cluster up to the point where they
// would act: decoding and every check made before anything is written. A validated request
// is not carried out (it would bootstrap or join).
func FuzzInitBody(f *testing.F) {
	for _, seed := range []string{
		`{"preseed":{"config":{"core.https_address":"127.0.0.1:8443"},"cluster":{"enabled":true,"server_name":"a"}}}`,
		`{"preseed":{"cluster":{"enabled":true,"server_name":"b","cluster_address":"127.0.0.1:8443","cluster_token":"eyJ9"}},"wipe":true}`,
		`{"preseed":{"cluster":{"enabled":true,"server_name":"c","server_address":"10.0.0.1","cluster_address":"10.0.0.2","cluster_certificate":"x","cluster_password":"p"}}}`,
		`{"preseed":{"storage_pools":[{"name":"p","driver":"nope"}],"cluster":{"enabled":true,"server_name":"d"}}}`,
		`{"preseed":{"networks":[{"name":"n","type":"macvlan"}],"cluster":{"enabled":true,"server_name":"e"}}}`,
		`{"preseed":{"cluster":{"enabled":false}}}`,
		`{"preseed":{"config":{"user.x":"'; DROP TABLE members; --"},"cluster":{"enabled":true,"server_name":"'; DROP TABLE members; --"}}}`,
		`{"preseed":null}`,
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	d, err := New(Config{Dir: filepath.Join(dir, "d"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.local.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := validateInit(d, body); err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("%q: empty error", body)
			}
			if code := d.srv.ErrorCode(err); code >= 500 {
				t.Fatalf("%q: status %d: %v", body, code, err)
			}
		}
	})
}

// validateInit is what postInit and putCluster check before they change anything.
func validateInit(d *Daemon, body []byte) error {
	req := httptest.NewRequest(http.MethodPost, "/internal/init", bytes.NewReader(body))
	var ip api.InitPost
	if err := decodeBody(req, &ip); err != nil {
		return err
	}
	p := ip.Preseed
	if err := checkPreseedShape(&p); err != nil {
		return badRequest("%v", err)
	}
	if p.Cluster.ClusterAddress == "" && p.Cluster.ClusterToken == "" {
		_, _, _, err := d.preseedAddresses(p, p.Cluster.ServerAddress)
		return err
	}
	if err := checkMemberConfig(p.Cluster.MemberConfig); err != nil {
		return badRequest("cluster.%v", err)
	}
	if _, err := targetOf(p.Cluster); err != nil {
		return err
	}
	_, _, _, err := d.preseedAddresses(p, p.Cluster.ServerAddress)
	return err
}

// pemOf encodes a DER certificate as PEM.
func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
