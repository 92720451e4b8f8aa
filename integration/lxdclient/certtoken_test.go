package lxdclient

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestCertificateAddToken: `lxc config trust add --name` through node2 prints a token (a
// token operation on node2), `list-tokens` lists it through node3, a new client adds the
// cluster as a remote with it (`lxc remote add NAME TOKEN`, which goes to node1, the
// token's first address) and is then trusted under the token's name; a revoked token is
// refused.
func TestCertificateAddToken(t *testing.T) {
	NeedLXC(t)
	ms := StartCluster(t, 3)
	admin2, admin3 := NewLXC(t), NewLXC(t)
	admin2.AddRemoteTrusted("orch", ms[1])
	admin3.AddRemoteTrusted("orch", ms[2])

	tok := printedCertToken(t, admin2.MustRun("config", "trust", "add", "--name", "laptop"), "laptop")
	if ct, err := api.DecodeCertificateAddToken(tok); err != nil || ct.ClientName != "laptop" || len(ct.Addresses) != 3 || ct.Addresses[0] != ms[0].Addr {
		t.Fatalf("lxc config trust add printed %q: %+v %v", tok, ct, err)
	}
	if out := admin3.MustRun("config", "trust", "list-tokens"); !strings.Contains(out, "laptop") || !strings.Contains(out, tok) {
		t.Fatalf("lxc config trust list-tokens through node3:\n%s", out)
	}
	laptop := NewLXC(t)
	laptop.MustRun("remote", "add", "orch", tok)
	laptop.MustRun("remote", "switch", "orch")
	if out := laptop.MustRun("info"); !strings.Contains(out, "auth: trusted") {
		t.Fatalf("lxc info after remote add with a token:\n%s", out)
	}
	if out := admin3.MustRun("config", "trust", "list"); !strings.Contains(out, "laptop") {
		t.Fatalf("lxc config trust list has no laptop:\n%s", out)
	}
	if out := admin3.MustRun("config", "trust", "list-tokens"); strings.Contains(out, "laptop") {
		t.Fatalf("the used token is still listed:\n%s", out)
	}

	tok = printedCertToken(t, admin3.MustRun("config", "trust", "add", "--name", "stolen"), "stolen")
	admin2.MustRun("config", "trust", "revoke-token", "stolen")
	thief := NewLXC(t)
	thief.WantFailure([]string{"remote", "add", "orch", tok}, "no valid certificate-add token")

	// core.remote_token_expiry (LXD's; unset: no expiry): a token past it is gone from the
	// list and refused as expired.
	admin2.WantFailure([]string{"config", "set", "core.remote_token_expiry", "soon"}, "core.remote_token_expiry")
	admin2.MustRun("config", "set", "core.remote_token_expiry", "1S")
	tok = printedCertToken(t, admin2.MustRun("config", "trust", "add", "--name", "late"), "late")
	if ct, err := api.DecodeCertificateAddToken(tok); err != nil || ct.ExpiresAt.IsZero() {
		t.Fatalf("a token issued with core.remote_token_expiry=1S carries no expiry: %+v %v", ct, err)
	}
	wait.For(t, 30*time.Second, "the expired token to leave list-tokens", func() error {
		if out := admin3.MustRun("config", "trust", "list-tokens"); strings.Contains(out, "late") {
			return fmt.Errorf("still listed:\n%s", out)
		}
		return nil
	})
	NewLXC(t).WantFailure([]string{"remote", "add", "orch", tok}, "expired")
}

// printedCertToken is the token `lxc config trust add --name name` printed.
func printedCertToken(t *testing.T, out, name string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != "Client "+name+" certificate add token:" {
		t.Fatalf("lxc config trust add --name %s printed:\n%s", name, out)
	}
	return strings.TrimSpace(lines[1])
}
