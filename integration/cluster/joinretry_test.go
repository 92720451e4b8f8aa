package cluster

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
	"orch/nodeagent/version"
)

// acceptBody is the joiner's accept request as the daemon sends it (daemon/join.go).
type acceptBody struct {
	Name          string       `json:"name"`
	Address       string       `json:"address"`
	ClientAddress string       `json:"client_address"`
	TokenSecret   string       `json:"token_secret,omitempty"`
	Version       version.Info `json:"version"`
}

// askAccept sends the accept request of a join with token tok to the cluster member at
// addr, presenting cert, as a joining daemon does, and returns the error (nil when
// accepted; the answer itself is dropped, as if lost on the way back).
func askAccept(t *testing.T, addr string, cert tls.Certificate, tok *api.JoinToken, name, joinAddr string) error {
	t.Helper()
	cl := api.NewTLSClient(addr, api.TLSConfig(cert, tok.Fingerprint))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := acceptBody{Name: name, Address: joinAddr, TokenSecret: tok.Secret, Version: version.Current()}
	_, err := cl.Call(ctx, http.MethodPost, "/internal/cluster/accept", req, nil, "")
	return err
}

// serverCert loads the daemon's own certificate (DIR/server.crt), which a joiner presents.
func serverCert(t *testing.T, a *agenttest.Agent) tls.Certificate {
	t.Helper()
	kp, err := pki.Load(a.Dir, "server")
	if err != nil {
		t.Fatalf("%s: %v", a.Name, err)
	}
	cert, err := kp.TLS()
	if err != nil {
		t.Fatalf("%s: %v", a.Name, err)
	}
	return cert
}

// TestJoinRetryAfterLostAcceptAnswer: a joiner whose accept request was applied but whose
// answer never arrived (token consumed, name taken) retries the same join, with the same
// certificate, name and token, and gets in. Another certificate cannot take over the
// accepted join, through the leader or through another member.
func TestJoinRetryAfterLostAcceptAnswer(t *testing.T) {
	ms := agenttest.StartN(t, 3)
	agenttest.Bootstrap(t, ms[0], api.Preseed{})
	agenttest.JoinWithToken(t, ms[0], ms[1])
	joiner := ms[2]
	raw := agenttest.NewToken(t, ms[0], joiner.Name)
	tok, err := api.DecodeJoinToken(raw)
	if err != nil {
		t.Fatal(err)
	}

	// The first attempt is applied, its answer lost: sent through the non-leader member.
	if err := askAccept(t, ms[1].Addr, serverCert(t, joiner), tok, joiner.Name, joiner.Addr); err != nil {
		t.Fatalf("first accept: %v", err)
	}
	// Someone else with the token cannot take the accepted join over.
	other, err := pki.Generate("intruder")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, _ := other.TLS()
	for _, via := range ms[:2] {
		if err := askAccept(t, via.Addr, otherCert, tok, joiner.Name, joiner.Addr); err == nil {
			t.Fatalf("accept through %s with another certificate succeeded", via.Name)
		}
	}
	if out := ms[0].MustRun("cluster", "list-tokens"); strings.Contains(out, joiner.Name) {
		t.Errorf("the used token is still listed as outstanding:\n%s", out)
	}

	// The joiner retries the whole join with the same token.
	joiner.MustRunInput(agenttest.PreseedYAML(t, agenttest.TokenPreseed(joiner, raw)), "init", "--preseed")
	for _, via := range ms {
		waitAllOnline(t, via, 3, 15*time.Second)
	}
	if err := askAccept(t, ms[0].Addr, serverCert(t, joiner), tok, joiner.Name, joiner.Addr); err == nil {
		t.Fatalf("accept after the join completed succeeded: the token must be spent")
	}
	if _, err := os.Stat(filepath.Join(joiner.Dir, "cluster.crt")); err != nil {
		t.Fatalf("%s: %v", joiner.Name, err)
	}
}

// TestJoinWaitsForAnUnreachableCluster: a joiner that reaches no member at first (here
// the token names one address, where nothing listens for the first second; at 200 joiners
// on a loaded machine, a lost SYN and a 5 s dial timeout) asks again and joins once a
// member answers, instead of failing on the first connection error.
func TestJoinWaitsForAnUnreachableCluster(t *testing.T) {
	ms := agenttest.StartN(t, 2)
	agenttest.Bootstrap(t, ms[0], api.Preseed{})
	joiner := ms[1]
	tok, err := api.DecodeJoinToken(agenttest.NewToken(t, ms[0], joiner.Name))
	if err != nil {
		t.Fatal(err)
	}
	late := agenttest.FreePort(t, "127.0.0.1")
	tok.Addresses = []string{late}
	go func() {
		time.Sleep(time.Second) // the cluster is unreachable for a while: the condition under test
		forward(t, late, ms[0].Addr)
	}()
	r := joiner.RunInput(agenttest.PreseedYAML(t, agenttest.TokenPreseed(joiner, tok.Encode())), "init", "--preseed")
	if r.Code != 0 {
		t.Fatalf("join through an address that answers after a second: exit %d\n%s", r.Code, r.Stderr)
	}
	waitAllOnline(t, ms[0], 2, 15*time.Second)
}

// forward listens on from and copies every connection to to and back, until the test ends.
func forward(t *testing.T, from, to string) {
	ln, err := net.Listen("tcp", from)
	if err != nil {
		t.Errorf("listening on %s: %v", from, err)
		return
	}
	t.Cleanup(func() { ln.Close() })
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", to)
			if err != nil {
				return
			}
			defer u.Close()
			go func() { _, _ = io.Copy(u, c) }()
			_, _ = io.Copy(c, u)
		}()
	}
}
