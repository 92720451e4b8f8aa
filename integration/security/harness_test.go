// Package security tests what the cluster refuses: untrusted clients on the cluster and
// client APIs, fabricated joins, other local users on the unix socket, SQL in API inputs,
// and that the trust password never appears in logs, API output or files. Real nodeagent
// processes on loopback addresses; more join refusals live in integration/cluster
// (TestJoinRefusals), SSH host-key refusal in integration/orchup (TestHostKeyMismatch).
package security

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
)

// trustPassword is the trust password of every test cluster; the tests grep for it.
const trustPassword = "Zq8-security-trust-password-Zq8"

var agentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "security-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin = filepath.Join(dir, "nodeagent")
	code := 1
	cmd := exec.Command("go", "build", "-o", agentBin, "./nodeagent/cmd/nodeagent")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building nodeagent: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// agent is one nodeagent daemon process with its directory and log.
type agent struct {
	name, addr, dir, log string
	cmd                  *exec.Cmd
}

// startAgent starts a daemon on a fresh directory and waits for its socket; cleanup kills
// it by PID and prints its log when the test failed.
func startAgent(t *testing.T, name string) *agent {
	t.Helper()
	base := t.TempDir()
	a := &agent{name: name, addr: freeAddr(t), dir: filepath.Join(base, "d"), log: filepath.Join(base, "daemon.log")}
	logf, err := os.Create(a.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	a.cmd = exec.Command(agentBin, "daemon", "--dir", a.dir, "--raft-heartbeat", "300ms", "--raft-election", "300ms", "--raft-leader-lease", "300ms")
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		_ = a.cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(a.log)
			t.Logf("[%s] log:\n%s", a.name, b)
		}
	})
	cl := a.local()
	defer cl.Close()
	wait.For(t, 15*time.Second, name+" answering on its socket", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _, err := cl.Server(ctx)
		return err
	})
	return a
}

func (a *agent) local() *api.Client { return api.NewUnixClient(filepath.Join(a.dir, "unix.socket")) }

// bootstrap makes a a one-member cluster with the trust password.
func (a *agent) bootstrap(t *testing.T) {
	t.Helper()
	cl := a.local()
	defer cl.Close()
	err := cl.Init(ctxT(t, time.Minute), api.InitPost{Preseed: api.Preseed{
		Config:  map[string]string{"core.https_address": a.addr, "core.trust_password": trustPassword},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: a.name},
	}})
	if err != nil {
		t.Fatalf("%s: bootstrap: %v", a.name, err)
	}
}

// fingerprint is the cluster certificate's fingerprint as the member reports it.
func (a *agent) fingerprint(t *testing.T) string {
	t.Helper()
	cl := a.local()
	defer cl.Close()
	s, _, err := cl.Server(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return s.Environment.CertificateFingerprint
}

// newClientCert makes a client certificate nobody trusts yet.
func newClientCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	kp, err := pki.Generate("security test client")
	if err != nil {
		t.Fatal(err)
	}
	c, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	return c, kp.CertPEM
}

// tlsClient connects to a's API pinned to the cluster certificate, presenting cert (none
// when cert has no leaf).
func tlsClient(t *testing.T, a *agent, cert tls.Certificate) *api.Client {
	t.Helper()
	cfg := api.TLSConfig(cert, a.fingerprint(t))
	if len(cert.Certificate) == 0 {
		cfg.Certificates = nil
		cfg.GetClientCertificate = nil
	}
	cl := api.NewTLSClient(a.addr, cfg)
	t.Cleanup(cl.Close)
	return cl
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
