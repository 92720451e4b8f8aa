package agenttest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestAgentLifecycle starts a real daemon, stops it (exit 0), restarts it on the same
// directory (a new PID, the same member), kills it and checks that its log holds every
// start's header.
func TestAgentLifecycle(t *testing.T) {
	a := Start(t, "life1", NewAddr(t))
	pid := a.PID()
	if pid == 0 || !a.Running() {
		t.Fatalf("after Start: pid %d, running %v", pid, a.Running())
	}
	Bootstrap(t, a, api.Preseed{})
	if code := a.Stop(); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if a.Running() || a.PID() != 0 {
		t.Fatalf("after Stop: running %v, pid %d", a.Running(), a.PID())
	}
	a.Start()
	if a.PID() == pid {
		t.Fatalf("restarted with the same pid %d", pid)
	}
	WaitRoles(t, a, 15*time.Second, "life1 leading again", WantRoleCounts(1, 0, 0))
	a.Kill()
	if a.Running() {
		t.Fatal("running after Kill")
	}
	b, err := os.ReadFile(a.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"=== test harness: start 1\n", "=== test harness: start 2\n", "--raft-heartbeat " + RaftTiming} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the log lacks %q:\n%s", want, b)
		}
	}
}

// TestFormClusterAndTLS forms two members, finds the leader and reaches the API over
// mutual TLS: untrusted without a certificate, trusted once the certificate is added.
func TestFormClusterAndTLS(t *testing.T) {
	ms := FormCluster(t, 2)
	if l := LeaderOf(t, ms); l != ms[0] {
		t.Fatalf("leader %v; want the bootstrap member node1", l)
	}
	cert, certPEM := NewClientCert(t, "agenttest client")
	cl := ms[1].TLSClient(t, cert)
	s, _ := Server(t, ms[1])
	if s.Environment.CertificateFingerprint == "" {
		t.Fatal("no cluster certificate fingerprint")
	}
	ms[0].MustRunInput(string(certPEM), "trust", "add", "agenttest")
	wait.For(t, 10*time.Second, "node2 serving the client as trusted", func() error {
		got, _, err := cl.Server(t.Context())
		if err == nil && got.Auth != "trusted" {
			return fmt.Errorf("auth %q", got.Auth)
		}
		return err
	})
}

func TestPrefixTail(t *testing.T) {
	got := prefixTail("n1", []byte("a\nb\nc\n"), 2)
	if want := "[n1] ... 1 earlier lines\n[n1] b\n[n1] c\n"; got != want {
		t.Fatalf("prefixTail = %q, want %q", got, want)
	}
}
