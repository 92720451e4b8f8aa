package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// A restarted member serves its network before its database is open again: a client
// (trusted or not) is told the member is starting, 503 (try again), never 403 "not
// trusted", which clients and members take as a final refusal; once the database is open
// the trusted client is served and the stranger refused.
func TestStartingMemberAnswers503(t *testing.T) {
	dir := t.TempDir()
	m := runMember(t, dir)
	cl := api.NewUnixClient(SocketPath(dir))
	defer cl.Close()
	ctx := context.Background()
	init := api.InitPost{Preseed: api.Preseed{
		Config:  map[string]string{"core.https_address": freeLoopback(t)},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: "s1"},
	}}
	if err := cl.Init(ctx, init); err != nil {
		t.Fatalf("bootstrapping s1: %v", err)
	}
	friend, stranger := untrustedCaller(t), untrustedCaller(t)
	if err := cl.AddCertificate(ctx, api.CertificatesPost{Name: "friend", Type: "client", Certificate: string(pemOf(friend.cert.Raw))}); err != nil {
		t.Fatalf("trusting the client certificate: %v", err)
	}
	m.stop()

	d, err := New(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timings: fuzzTimings()})
	if err != nil {
		t.Fatal(err)
	}
	reached, release := make(chan struct{}), make(chan struct{})
	d.beforeOpenStore = func() { close(reached); <-release }
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(runCtx) }()
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
		cancel()
		<-done
	})
	select {
	case <-reached:
	case <-time.After(20 * time.Second):
		t.Fatal("the restarted daemon never reached the opening of its database")
	}
	h := d.srv.Handler()
	for name, who := range map[string]fuzzCaller{"trusted": friend, "untrusted": stranger} {
		code, resp := serveAs(d, h, who, http.MethodGet, "/1.0/instances", nil, nil)
		if code != http.StatusServiceUnavailable || !strings.Contains(resp.Error, "starting") {
			t.Errorf("%s client before the database is open: %d %q, want 503 saying the member is starting", name, code, resp.Error)
		}
	}
	if _, err := cl.Database(ctx); !isAPIError(err, http.StatusServiceUnavailable, "starting") {
		t.Errorf("list-database before the database is open: %v, want 503 saying the member is starting", err)
	}

	close(release)
	released = true
	wait.For(t, 10*time.Second, "the trusted client served", func() error {
		if code, resp := serveAs(d, h, friend, http.MethodGet, "/1.0/instances", nil, nil); code != http.StatusOK {
			return errors.New(resp.Error)
		}
		return nil
	})
	if code, resp := serveAs(d, h, stranger, http.MethodGet, "/1.0/instances", nil, nil); code != http.StatusForbidden {
		t.Errorf("untrusted client once started: %d %q, want 403", code, resp.Error)
	}
}

func isAPIError(err error, code int, says string) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == code && strings.Contains(ae.Error(), says)
}
