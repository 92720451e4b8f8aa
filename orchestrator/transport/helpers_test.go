package transport

import (
	"context"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"orch/orchestrator/transport/sshdtest"
)

// testHost is an sshd plus a Config that reaches it.
type testHost struct {
	srv *sshdtest.Server
	key sshdtest.UserKey
	cfg Config
}

// startHost starts an sshd that trusts a fresh user key and returns a Config for it whose
// known_hosts file already lists the server's ed25519 key.
func startHost(t testing.TB, o sshdtest.Options) *testHost {
	t.Helper()
	key := sshdtest.NewUserKey(t)
	o.AuthorizedKeys = append(o.AuthorizedKeys, key.Public)
	srv := sshdtest.Start(t, o)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshdtest.WriteKnownHosts(t, kh, srv.KnownHostsLine(firstKeyType(o)))
	return &testHost{srv: srv, key: key, cfg: Config{
		Name:           "host-" + srv.IP,
		Host:           srv.IP,
		Port:           srv.Port,
		User:           loginUser(t),
		KeyFiles:       []string{key.Path},
		AgentSocket:    AgentNone,
		KnownHostsFile: kh,
		Logger:         testLogger(t),
	}}
}

// firstKeyType is the first host key type the server will have.
func firstKeyType(o sshdtest.Options) string {
	if len(o.HostKeyTypes) == 0 {
		return "ed25519"
	}
	return o.HostKeyTypes[0]
}

// loginUser is root when the tests run as root, else the current user (the only one a
// non-root sshd can log in).
func loginUser(t testing.TB) string {
	if os.Geteuid() == 0 {
		return "root"
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// dial connects with a deadline and fails the test on error.
func dial(t testing.TB, cfg Config) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx is a context bounded by a generous deadline.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// run runs cmd and fails the test on error.
func run(t *testing.T, c *Conn, cmd string, opts RunOptions) Result {
	t.Helper()
	res, err := c.Run(testCtx(t), cmd, opts)
	if err != nil {
		t.Fatalf("run %q: %v", cmd, err)
	}
	return res
}

// testLogger logs through t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter adapts t.Log to io.Writer.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
