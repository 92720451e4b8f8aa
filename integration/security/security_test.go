package security

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
)

// TestUntrustedClientRefused: a client without a certificate, or with one the cluster does
// not trust, sees only the public identity and is refused everything else with 403 — on
// the client API and on the cluster API's internal endpoints (same port).
func TestUntrustedClientRefused(t *testing.T) {
	a := startAgent(t, "sec1")
	bootstrap(t, a)
	stranger, _ := agenttest.NewClientCert(t, "security test client")
	for _, c := range []struct {
		name string
		cert tls.Certificate
	}{{"no certificate", tls.Certificate{}}, {"untrusted certificate", stranger}} {
		t.Run(c.name, func(t *testing.T) {
			cl := a.TLSClient(t, c.cert)
			s, etag, err := cl.Server(ctxT(t, 10*time.Second))
			if err != nil {
				t.Fatalf("GET /1.0: %v", err)
			}
			if s.Auth != "untrusted" || len(s.Config) != 0 || etag != "" || s.Environment.ServerName != "" {
				t.Errorf("GET /1.0 shows an untrusted client more than the public identity: auth %q config %v etag %q env %+v", s.Auth, s.Config, etag, s.Environment)
			}
			for _, r := range []struct{ method, path, body string }{
				{"PATCH", "/1.0", `{"config":{"user.x":"1"}}`},
				{"PUT", "/1.0", `{"config":{}}`},
				{"GET", "/1.0/cluster", ""},
				{"GET", "/1.0/cluster/members", ""},
				{"POST", "/1.0/cluster/members", `{"server_name":"evil"}`},
				{"GET", "/1.0/cluster/tokens", ""},
				{"GET", "/1.0/certificates", ""},
				{"DELETE", "/1.0/cluster/members/sec1", ""},
				{"POST", "/internal/db/query", `{"sql":"SELECT value FROM config"}`},
				{"POST", "/internal/db/exec", `{"request":[{"sql":"DELETE FROM members"}]}`},
				{"POST", "/internal/heartbeat", `{}`},
				{"POST", "/internal/init", `{}`},
				{"GET", "/internal/database", ""},
			} {
				code := rawStatus(t, cl, r.method, r.path, r.body)
				if code != http.StatusForbidden {
					t.Errorf("%s %s: status %d, want 403", r.method, r.path, code)
				}
			}
			// Adding its own certificate needs the trust password.
			err = cl.AddCertificate(ctxT(t, 10*time.Second), api.CertificatesPost{Name: "me", Password: "wrong"})
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code < 400 || ae.Code >= 500 {
				t.Errorf("trusting itself with a wrong password: %v, want 403 (or 400 without a certificate)", err)
			}
		})
	}
	// The same certificate with the password is trusted, and then reads the config.
	cl := a.TLSClient(t, stranger)
	if err := cl.AddCertificate(ctxT(t, 10*time.Second), api.CertificatesPost{Name: "me", Password: trustPassword}); err != nil {
		t.Fatalf("trusting with the right password: %v", err)
	}
	if s, _, err := cl.Server(ctxT(t, 10*time.Second)); err != nil || s.Auth != "trusted" {
		t.Fatalf("after trust: %v %+v", err, s)
	}
}

// rawStatus sends one request and returns its HTTP status.
func rawStatus(t *testing.T, cl *api.Client, method, path, body string) int {
	t.Helper()
	hdr := http.Header{"Content-Type": {"application/json"}}
	resp, err := cl.Raw(ctxT(t, 10*time.Second), method, path, strings.NewReader(body), hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTrustPasswordNeverShown: the trust password is stored as an scrypt hash, and after
// it was used right and wrong (certificate add, join), it appears in no log, no API output
// and no file of either agent directory (databases, raft log, snapshots).
func TestTrustPasswordNeverShown(t *testing.T) {
	a := startAgent(t, "sec1")
	bootstrap(t, a)
	joiner := startAgent(t, "sec2")
	local := a.Local()
	defer local.Close()
	var rows [][]any
	if err := local.CallHeaders(ctxT(t, 10*time.Second), "POST", "/internal/db/query",
		map[string]any{"sql": "SELECT value FROM config WHERE key = 'core.trust_password'"}, &rows, nil); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || !strings.HasPrefix(rows[0][0].(string), "scrypt$") {
		t.Fatalf("core.trust_password is stored as %v, want an scrypt hash", rows)
	}
	// Use it: wrong and right certificate adds, a wrong-password and a right-password join.
	var outputs bytes.Buffer
	cert, _ := agenttest.NewClientCert(t, "security test client")
	cl := a.TLSClient(t, cert)
	for _, pw := range []string{trustPassword + "x", trustPassword} {
		if err := cl.AddCertificate(ctxT(t, 10*time.Second), api.CertificatesPost{Name: "c", Password: pw}); err != nil {
			outputs.WriteString(err.Error())
		}
	}
	jl := joiner.Local()
	defer jl.Close()
	for _, pw := range []string{"not-" + trustPassword, trustPassword} {
		err := jl.Init(ctxT(t, time.Minute), api.InitPost{Preseed: api.Preseed{Cluster: &api.ClusterPut{Enabled: true,
			ServerName: joiner.Name, ServerAddress: joiner.Addr, ClusterAddress: a.Addr, ClusterPassword: pw,
			ClusterCertificate: agenttest.ClusterCert(t, a)}}})
		if err != nil {
			outputs.WriteString(err.Error())
		}
	}
	// Every API output a trusted client or root can read.
	for _, path := range []string{"/1.0", "/1.0/cluster", "/1.0/cluster/members", "/1.0/certificates", "/1.0/cluster/tokens", "/internal/database"} {
		resp, err := local.Raw(ctxT(t, 10*time.Second), "GET", path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = outputs.ReadFrom(resp.Body)
		resp.Body.Close()
	}
	if bytes.Contains(outputs.Bytes(), []byte(trustPassword)) {
		t.Errorf("an API answer or error contains the trust password:\n%s", outputs.String())
	}
	for _, ag := range []*agenttest.Agent{a, joiner} {
		grepTree(t, filepath.Dir(ag.Dir), trustPassword) // the agent directory and the daemon log
	}
}

// grepTree fails if any file under root contains secret (raw or hex-encoded).
func grepTree(t *testing.T, root, secret string) {
	t.Helper()
	needles := [][]byte{[]byte(secret), []byte(hex.EncodeToString([]byte(secret)))}
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s contains the trust password", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d files searched", root, files)
}

// TestUnixSocketRootOnly: the socket is mode 0600 and owned by root; another local user
// cannot connect to it.
func TestUnixSocketRootOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: run the tests as root (sudo -E go test ./integration/security)")
	}
	a := startAgent(t, "sec1")
	sock := filepath.Join(a.Dir, "unix.socket")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || st.Uid != 0 {
		t.Fatalf("%s: mode %v owner %d, want 0600 owned by root", sock, fi.Mode().Perm(), st.Uid)
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user 'nobody' to test with: %v (useradd a non-root user)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Let the other user run the binary and reach the socket's directory, so that only the
	// socket's mode stops it.
	for _, d := range []string{filepath.Dir(agenttest.Bin()), filepath.Dir(a.Dir), a.Dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(agenttest.Bin(), "--dir", a.Dir, "info")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("user %s used the socket: %s", u.Username, out)
	}
	if !strings.Contains(string(out), "permission denied") {
		t.Errorf("user %s: %v: %s; want permission denied", u.Username, err, out)
	}
	t.Logf("refused: %s", strings.TrimSpace(string(out)))
}

// TestForgedJoinToken: a token the cluster never issued (a made-up secret for a name with
// no token, with the real fingerprint and address) is refused and changes nothing; a token
// whose fingerprint is not the cluster's is refused by the joiner before it sends anything.
// Wrong password, tampered, expired and reused tokens and a wrong certificate are in
// integration/cluster's TestJoinRefusals.
func TestForgedJoinToken(t *testing.T) {
	a := startAgent(t, "sec1")
	bootstrap(t, a)
	joiner := startAgent(t, "sec2")
	local := a.Local()
	defer local.Close()
	before := members(t, local)
	srv, _ := agenttest.Server(t, a)
	fp := srv.Environment.CertificateFingerprint
	for _, c := range []struct {
		name, fingerprint, want string
	}{
		{"forged secret", fp, "no valid join token"},
		{"forged fingerprint", strings.Repeat("ab", 32), "fingerprint"},
	} {
		tok := api.JoinToken{ServerName: joiner.Name, Secret: strings.Repeat("0", 64), Fingerprint: c.fingerprint,
			Addresses: []string{a.Addr}, ExpiresAt: time.Now().Add(time.Hour)}
		jl := joiner.Local()
		err := jl.Init(ctxT(t, time.Minute), api.InitPost{Preseed: api.Preseed{Cluster: &api.ClusterPut{Enabled: true,
			ServerName: joiner.Name, ServerAddress: joiner.Addr, ClusterToken: tok.Encode()}}})
		jl.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: join: %v, want refused with %q", c.name, err, c.want)
		}
		if after := members(t, local); after != before {
			t.Errorf("%s: members changed from %s to %s", c.name, before, after)
		}
	}
	jl := joiner.Local()
	defer jl.Close()
	s, _, err := jl.Server(ctxT(t, 10*time.Second))
	if err != nil || s.Environment.Initialised {
		t.Errorf("the joiner is initialised after refused joins: %v %+v", err, s.Environment)
	}
}

func members(t *testing.T, cl *api.Client) string {
	t.Helper()
	ms, err := cl.Members(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.ServerName+"@"+m.URL)
	}
	return strings.Join(names, ",")
}

// TestSQLInjection: quotes and SQL in config keys and values, token and certificate names
// are stored and returned verbatim, and every table is intact afterwards.
func TestSQLInjection(t *testing.T) {
	a := startAgent(t, "sec1")
	bootstrap(t, a)
	cl := a.Local()
	defer cl.Close()
	ctx := ctxT(t, time.Minute)
	evil := `'; DROP TABLE members; --`
	cfg := map[string]string{
		"user.k":                         evil,
		`user.k'; DROP TABLE config; --`: `x" OR 1=1; --`,
		`user.q"`:                        `'); DELETE FROM config; --`,
		"user.unicode":                   "\u0000'\u2028\\",
	}
	if err := cl.PatchConfig(ctx, cfg, ""); err != nil {
		t.Fatalf("PATCH: %v", err)
	}
	tokName := `x';DROP_TABLE_tokens;--"`
	if _, err := cl.CreateToken(ctx, tokName); err != nil {
		t.Fatalf("token %q: %v", tokName, err)
	}
	if _, err := cl.CreateToken(ctx, evil); err == nil {
		t.Errorf("token for the member name %q (with spaces) was accepted", evil)
	}
	_, certPEM := agenttest.NewClientCert(t, "security test client")
	if err := cl.AddCertificate(ctx, api.CertificatesPost{Name: evil, Type: "client", Certificate: string(certPEM)}); err != nil {
		t.Fatalf("certificate named %q: %v", evil, err)
	}
	s, _, err := cl.Server(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range cfg {
		if s.Config[k] != v {
			t.Errorf("%q reads back %q, want %q", k, s.Config[k], v)
		}
	}
	toks, err := cl.Tokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].ServerName != tokName {
		t.Errorf("tokens: %v %+v, want one named %q", err, toks, tokName)
	}
	certs, err := cl.Certificates(ctx)
	if err != nil || len(certs) != 1 || certs[0].Name != evil {
		t.Errorf("certificates: %v %+v, want one named %q", err, certs, evil)
	}
	if got := members(t, cl); !strings.HasPrefix(got, "sec1@") || strings.Contains(got, ",") {
		t.Errorf("members: %s, want only sec1", got)
	}
	var tables [][]any
	if err := cl.CallHeaders(ctx, "POST", "/internal/db/query", map[string]any{"sql": "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"}, &tables, nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range tables {
		names = append(names, r[0].(string))
	}
	for _, want := range []string{"certificates", "config", "members", "meta", "tokens"} {
		if !strings.Contains(","+strings.Join(names, ",")+",", ","+want+",") {
			t.Errorf("table %s is gone; tables: %v", want, names)
		}
	}
}
