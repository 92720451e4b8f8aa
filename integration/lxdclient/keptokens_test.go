package lxdclient

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
)

// TestTokensSurviveRestarts: a join token (`lxc cluster add`) and a certificate-add token
// (`lxc config trust add`) handed out before every member was killed and restarted are
// still listed by LXD's client, the certificate-add token still adds a remote, and the join
// token can still be revoked — the members keep the tokens they issued (localdb), where
// before they lived only in the issuing process.
func TestTokensSurviveRestarts(t *testing.T) {
	NeedLXC(t)
	ms := StartCluster(t, 3)
	c := NewLXC(t)
	c.AddRemoteTrusted("orch", ms[1])
	join := printedToken(t, c.MustRun("cluster", "add", "node4"), "node4")
	cert := printedCertToken(t, c.MustRun("config", "trust", "add", "--name", "laptop"), "laptop")

	for _, m := range ms {
		m.Kill()
	}
	for _, m := range ms {
		m.Launch()
	}
	for _, m := range ms {
		m.WaitReady()
	}
	wait.For(t, 60*time.Second, "both tokens listed again", func() error {
		r := c.Run("cluster", "list-tokens")
		if r.Code != 0 || !strings.Contains(r.Stdout, join) {
			return fmt.Errorf("lxc cluster list-tokens: %s", r)
		}
		if r := c.Run("config", "trust", "list-tokens"); r.Code != 0 || !strings.Contains(r.Stdout, cert) {
			return fmt.Errorf("lxc config trust list-tokens: %s", r)
		}
		return nil
	})
	laptop := NewLXC(t)
	laptop.MustRun("remote", "add", "orch", cert)
	laptop.MustRun("remote", "switch", "orch")
	if out := laptop.MustRun("info"); !strings.Contains(out, "auth: trusted") {
		t.Fatalf("lxc info after remote add with a token issued before the restarts:\n%s", out)
	}
	c.MustRun("cluster", "revoke-token", "node4")
	if list := c.MustRun("cluster", "list-tokens"); strings.Contains(list, "node4") {
		t.Fatalf("list-tokens after revoke-token still has node4:\n%s", list)
	}
	if ts, err := ms[0].Client().Tokens(t.Context()); err != nil || len(ts) != 0 {
		t.Fatalf("after revoke-token the cluster still holds tokens %v (%v)", ts, err)
	}
}
