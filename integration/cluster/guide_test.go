package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
)

// guideSed is the guide's recipe that makes a PEM file fit a YAML double-quoted string.
const guideSed = `:a;N;$!ba;s/\n/\n\n/g`

// guideJoinPreseed is the guide's join preseed with names, addresses, the certificate and
// the secret filled in; the certificate is the output of the guide's sed command.
const guideJoinPreseed = `cluster:
  enabled: true
  server_name: %s
  server_address: %s
  cluster_address: %s
  cluster_certificate: "%s"
  cluster_password: %s
  member_config:
  - entity: storage-pool
    name: default
    key: source
    value: ""
`

// sedCertificate runs the guide's `sed ':a;N;$!ba;s/\n/\n\n/g' DIR/server.crt` on a member.
func sedCertificate(t *testing.T, a *agenttest.Agent) string {
	t.Helper()
	out, err := exec.Command("sed", guideSed, filepath.Join(a.Dir, "server.crt")).Output()
	if err != nil {
		t.Fatalf("%s: sed %s/server.crt: %v", a.Name, a.Dir, err)
	}
	return string(out)
}

// TestGuideJoinWithServerCert walks the guide's preseed flow: bootstrap, then join with a
// preseed whose cluster_certificate is the bootstrap member's server.crt passed through the
// guide's sed command. Every member's server.crt is then the cluster certificate (a third
// member joins with the second member's), `info` prints its fingerprint, a member removed
// from the cluster gets a certificate of its own again, and a wrong certificate is refused
// with an error naming server.crt.
func TestGuideJoinWithServerCert(t *testing.T) {
	ms := agenttest.StartN(t, 3)
	node1, node2, node3 := ms[0], ms[1], ms[2]
	agenttest.Bootstrap(t, node1, api.Preseed{StoragePools: []api.StoragePool{{Name: "default", Driver: "dir"}}})

	join := func(a, via *agenttest.Agent) {
		t.Helper()
		p := fmt.Sprintf(guideJoinPreseed, a.Name, a.Addr, via.Addr, sedCertificate(t, via), agenttest.TrustPassword)
		a.MustRunInput(p, "init", "--preseed")
		waitMember(t, node1, a.Name)
	}
	join(node2, node1)
	join(node3, node2) // any member's server.crt is the cluster certificate

	clusterFP := strings.TrimSpace(node1.MustRun("cluster", "fingerprint"))
	for _, m := range ms {
		if got := fileFingerprint(t, m, "server.crt"); got != clusterFP {
			t.Errorf("%s: server.crt has fingerprint %s; want the cluster certificate's %s", m.Name, got, clusterFP)
		}
		if info := m.MustRun("info", "--format", "yaml"); !strings.Contains(info, "certificate_fingerprint: "+clusterFP) {
			t.Errorf("%s: info does not print the cluster fingerprint %s:\n%s", m.Name, clusterFP, info)
		}
	}

	// A member that an earlier version initialised (its own server.crt beside cluster.crt)
	// presents the cluster certificate as server.crt once restarted.
	node2.Stop()
	own, err := pki.Generate("nodeagent")
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Save(node2.Dir, "server"); err != nil {
		t.Fatal(err)
	}
	node2.Start()
	if got := fileFingerprint(t, node2, "server.crt"); got != clusterFP {
		t.Errorf("%s restarted with a server.crt of its own: fingerprint %s; want the cluster's %s", node2.Name, got, clusterFP)
	}

	// A wrong certificate (another cluster's server.crt) is refused naming the right file.
	other := agenttest.Start(t, "other1", agenttest.NewAddr(t))
	agenttest.Bootstrap(t, other, api.Preseed{})
	joiner := agenttest.Start(t, "node4", agenttest.NewAddr(t))
	p := fmt.Sprintf(guideJoinPreseed, joiner.Name, joiner.Addr, node1.Addr, sedCertificate(t, other), agenttest.TrustPassword)
	r := joiner.RunInput(p, "init", "--preseed")
	if r.Code == 0 {
		t.Fatalf("%s joined with another cluster's certificate", joiner.Name)
	}
	for _, want := range []string{"cluster.cluster_certificate", node1.Addr, "server.crt", "nodeagent cluster fingerprint"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("the refusal %q does not say %q", strings.TrimSpace(r.Stderr), want)
		}
	}
	if strings.Contains(r.Stderr, agenttest.TrustPassword) {
		t.Errorf("the refusal repeats the trust password: %q", r.Stderr)
	}
	t.Logf("refused: %s", strings.TrimSpace(r.Stderr))

	// A removed member no longer presents the cluster's certificate.
	node1.MustRun("cluster", "remove", node3.Name, "--yes")
	wait.For(t, 15*time.Second, node3.Name+" reset after its removal", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, _, err := node3.Client().Server(ctx)
		if err != nil {
			return err
		}
		if s.Environment.Initialised {
			return fmt.Errorf("%s is still initialised", node3.Name)
		}
		return nil
	})
	if got := fileFingerprint(t, node3, "server.crt"); got == clusterFP {
		t.Errorf("%s was removed but its server.crt is still the cluster certificate", node3.Name)
	}
	if _, err := os.Stat(filepath.Join(node3.Dir, "cluster.crt")); err == nil {
		t.Errorf("%s was removed but still holds cluster.crt", node3.Name)
	}
}

// fileFingerprint is the fingerprint of a certificate file in a's agent directory.
func fileFingerprint(t *testing.T, a *agenttest.Agent, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.Dir, file))
	if err != nil {
		t.Fatalf("%s: %v", a.Name, err)
	}
	fp, err := pki.FingerprintPEM(bytes.TrimSpace(b))
	if err != nil {
		t.Fatalf("%s: %s: %v", a.Name, file, err)
	}
	return fp
}
