package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// TestJoinRefusals tries every way a join must be refused. Each attempt must fail with an
// error naming the problem and change nothing: the member list is the same before and after
// and the joiner stays uninitialised. At the end the same joiner directories join correctly.
func TestJoinRefusals(t *testing.T) {
	ms := agenttest.StartN(t, 2)
	// The cluster has a storage pool whose global key a joiner can get wrong.
	agenttest.Bootstrap(t, ms[0], api.Preseed{StoragePools: []api.StoragePool{
		{Name: "default", Driver: "dir", Config: map[string]string{"rsync.bwlimit": "100"}},
	}})
	agenttest.JoinWithToken(t, ms[0], ms[1])
	node1, node2 := ms[0], ms[1]
	cert := agenttest.ClusterCert(t, node1)
	joiner := agenttest.Start(t, "node3", agenttest.NewAddr(t))
	parent := t // members that end up in the cluster live as long as the whole test

	refuse := func(t *testing.T, a *agenttest.Agent, p api.Preseed, wantErr ...string) {
		t.Helper()
		before := memberShape(t, node2)
		r := a.RunInput(agenttest.PreseedYAML(t, p), "init", "--preseed")
		if r.Code == 0 {
			t.Fatalf("%s: init --preseed succeeded; want it refused with %q", a.Name, wantErr)
		}
		for _, w := range wantErr {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%s: error %q does not say %q", a.Name, strings.TrimSpace(r.Stderr), w)
			}
		}
		if strings.Contains(r.Stderr, agenttest.TrustPassword) {
			t.Errorf("%s: the error repeats the trust password: %q", a.Name, r.Stderr)
		}
		if after := memberShape(t, node1); after != before {
			t.Errorf("the member list changed:\nbefore %s\nafter  %s", before, after)
		}
		t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
	}
	uninitialised := func(t *testing.T, a *agenttest.Agent) {
		t.Helper()
		s, _ := agenttest.Server(t, a)
		if s.Environment.Initialised || s.Environment.ServerClustered {
			t.Errorf("%s is initialised after a refused join: %+v", a.Name, s.Environment)
		}
		if _, err := os.Stat(filepath.Join(a.Dir, "cluster.crt")); err == nil {
			t.Errorf("%s holds a cluster certificate after a refused join", a.Name)
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		refuse(t, joiner, agenttest.PasswordPreseed(joiner, node1.Addr, cert, "not-the-password"), "wrong trust password")
		uninitialised(t, joiner)
	})
	t.Run("tampered token", func(t *testing.T) {
		tok := tamperToken(t, agenttest.NewToken(t, node1, joiner.Name))
		refuse(t, joiner, agenttest.TokenPreseed(joiner, tok), "invalid join token", joiner.Name)
		uninitialised(t, joiner)
	})
	t.Run("expired token", func(t *testing.T) {
		node1.MustRun("config", "set", "cluster.join_token_expiry", "1S")
		defer node1.MustRun("config", "unset", "cluster.join_token_expiry")
		tok := agenttest.NewToken(t, node1, joiner.Name)
		exp := decodeToken(t, tok).ExpiresAt
		if d := time.Until(exp); d > 2*time.Second {
			t.Fatalf("token expires in %v with cluster.join_token_expiry 1S", d)
		}
		wait.For(t, 5*time.Second, "the token's expiry to pass", func() error {
			if now := time.Now(); !now.After(exp.Add(10 * time.Millisecond)) {
				return fmt.Errorf("now %s, expires %s", now.Format(time.StampMilli), exp.Format(time.StampMilli))
			}
			return nil
		})
		refuse(t, joiner, agenttest.TokenPreseed(joiner, tok), "expired", joiner.Name)
		uninitialised(t, joiner)
	})
	t.Run("reused token", func(t *testing.T) {
		// node4 joins with its token; a second agent presenting the same token is refused.
		node4 := agenttest.Start(parent, "node4", agenttest.NewAddr(t))
		tok := agenttest.NewToken(t, node1, node4.Name)
		node4.MustRunInput(agenttest.PreseedYAML(t, agenttest.TokenPreseed(node4, tok)), "init", "--preseed")
		// The joiner's directory presents node4's spent token under node4's name.
		refuse(t, joiner, renamed(agenttest.TokenPreseed(joiner, tok), node4.Name), "no valid join token", "used")
		uninitialised(t, joiner)
	})
	t.Run("wrong certificate", func(t *testing.T) {
		other := agenttest.Start(t, "other1", agenttest.NewAddr(t))
		agenttest.Bootstrap(t, other, api.Preseed{})
		p := agenttest.PasswordPreseed(joiner, node1.Addr, agenttest.ClusterCert(t, other), agenttest.TrustPassword)
		refuse(t, joiner, p, "fingerprint", node1.Addr, "server.crt")
		uninitialised(t, joiner)
	})
	t.Run("duplicate name", func(t *testing.T) {
		p := renamed(agenttest.PasswordPreseed(joiner, node1.Addr, cert, agenttest.TrustPassword), node2.Name)
		refuse(t, joiner, p, `member named "node2" already exists`)
		uninitialised(t, joiner)
		if r := node1.Run("cluster", "add", "node2"); r.Code == 0 || !strings.Contains(r.Stderr, "already exists") {
			t.Errorf("cluster add node2 (an existing name): exit %d, %q; want refused", r.Code, r.Stderr)
		}
	})
	t.Run("mismatched storage pool", func(t *testing.T) {
		p := agenttest.PasswordPreseed(joiner, node1.Addr, cert, agenttest.TrustPassword)
		p.StoragePools = []api.StoragePool{{Name: "default", Driver: "dir",
			Config: map[string]string{"rsync.bwlimit": "200", "source": "/srv/pool"}}}
		refuse(t, joiner, p, `storage pool "default"`, "rsync.bwlimit")
		uninitialised(t, joiner)
	})
	t.Run("initialised directory", func(t *testing.T) {
		// A member of another cluster must not join without --wipe, and nothing of it changes.
		other := agenttest.Start(parent, "node5", agenttest.NewAddr(t))
		agenttest.Bootstrap(t, other, api.Preseed{})
		fp := strings.TrimSpace(other.MustRun("cluster", "fingerprint"))
		refuse(t, other, agenttest.PasswordPreseed(other, node1.Addr, cert, agenttest.TrustPassword), "--wipe")
		tok := agenttest.NewToken(t, node1, other.Name)
		refuse(t, other, agenttest.TokenPreseed(other, tok), "--wipe")
		if got := strings.TrimSpace(other.MustRun("cluster", "fingerprint")); got != fp {
			t.Errorf("%s's cluster certificate changed from %s to %s", other.Name, fp, got)
		}
		s, _ := agenttest.Server(t, other)
		if !s.Environment.Initialised || s.Environment.ServerName != other.Name {
			t.Errorf("%s lost its own cluster: %+v", other.Name, s.Environment)
		}
		other.MustRunInput(agenttest.PreseedYAML(t, agenttest.TokenPreseed(other, tok)), "init", "--preseed", "--wipe")
		waitMember(t, node1, other.Name)
	})
	if t.Failed() {
		return
	}
	t.Run("joiner can still join", func(t *testing.T) {
		p := agenttest.PasswordPreseed(joiner, node1.Addr, cert, agenttest.TrustPassword)
		p.StoragePools = []api.StoragePool{{Name: "default", Driver: "dir",
			Config: map[string]string{"rsync.bwlimit": "100", "source": "/srv/pool"}}}
		joiner.MustRunInput(agenttest.PreseedYAML(t, p), "init", "--preseed")
		waitMember(t, node2, joiner.Name)
		s, _ := agenttest.Server(t, joiner)
		if !s.Environment.Initialised || s.Environment.ServerName != joiner.Name {
			t.Errorf("%s after joining: %+v", joiner.Name, s.Environment)
		}
	})
}

// memberShape is the member list through a (names, URLs, roles), as a comparable string.
func memberShape(t *testing.T, a *agenttest.Agent) string {
	t.Helper()
	var list []api.ClusterMember
	wait.For(t, 10*time.Second, "the member list", func() error {
		var err error
		list, err = agenttest.ListMembers(a)
		return err
	})
	rows := make([]string, 0, len(list))
	for _, m := range list {
		rows = append(rows, fmt.Sprintf("%s %s [%s]", m.ServerName, m.URL, strings.Join(m.Roles, ",")))
	}
	sort.Strings(rows)
	return strings.Join(rows, "; ")
}

// waitMember waits until name is an ONLINE member in the list through a.
func waitMember(t *testing.T, a *agenttest.Agent, name string) {
	t.Helper()
	wait.For(t, 10*time.Second, name+" ONLINE in the member list", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m, err := a.Client().Member(ctx, name)
		if err != nil {
			return err
		}
		if m.Status != api.StatusOnline {
			return fmt.Errorf("%s is %s", name, m.Status)
		}
		return nil
	})
}

// renamed returns p asking to join under another member name.
func renamed(p api.Preseed, name string) api.Preseed {
	c := *p.Cluster
	c.ServerName = name
	p.Cluster = &c
	return p
}

// decodeToken decodes a join token's printable form.
func decodeToken(t *testing.T, tok string) *api.JoinToken {
	t.Helper()
	jt, err := api.DecodeJoinToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return jt
}

// tamperToken flips the last character of the token's secret.
func tamperToken(t *testing.T, tok string) string {
	t.Helper()
	jt := decodeToken(t, tok)
	last := jt.Secret[len(jt.Secret)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	jt.Secret = jt.Secret[:len(jt.Secret)-1] + string(repl)
	b, err := json.Marshal(jt)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}
