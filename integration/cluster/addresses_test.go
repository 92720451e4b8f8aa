package cluster

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
)

// TestSeparateAddresses follows the guide's last section: node1 bootstraps with
// core.https_address (client API) and cluster.https_address different; node2 first sets
// core.https_address, then joins through PUT /1.0/cluster with server_address. Each member
// answers the client API on its client address and the cluster API on its cluster address,
// and `cluster list` shows the cluster addresses.
func TestSeparateAddresses(t *testing.T) {
	ms := agenttest.StartN(t, 2)
	node1, node2 := ms[0], ms[1]
	client1 := agenttest.FreePort(t, hostOf(node1.Addr))
	client2 := agenttest.FreePort(t, hostOf(node2.Addr))

	agenttest.Bootstrap(t, node1, api.Preseed{Config: map[string]string{
		"core.https_address": client1, "cluster.https_address": node1.Addr}})
	node2.MustRun("config", "set", "core.https_address", client2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := node2.Client().JoinCluster(ctx, api.ClusterPut{Enabled: true, ServerName: node2.Name,
		ServerAddress: node2.Addr, ClusterAddress: node1.Addr,
		ClusterCertificate: agenttest.ClusterCert(t, node1), ClusterPassword: agenttest.TrustPassword})
	if err != nil {
		t.Fatalf("PUT /1.0/cluster on node2: %v", err)
	}

	list := mustMembers(t, node2)
	var urls []string
	for _, m := range list {
		urls = append(urls, m.ServerName+"="+m.URL)
	}
	sort.Strings(urls)
	want := []string{"node1=https://" + node1.Addr, "node2=https://" + node2.Addr}
	if strings.Join(urls, " ") != strings.Join(want, " ") {
		t.Errorf("cluster list URLs %v; want the cluster addresses %v", urls, want)
	}

	fp := strings.TrimSpace(node1.MustRun("cluster", "fingerprint"))
	for _, c := range []struct {
		a               *agenttest.Agent
		client, cluster string
	}{{node1, client1, node1.Addr}, {node2, client2, node2.Addr}} {
		s, _ := agenttest.Server(t, c.a)
		// Both serve the client API, and LXD lists both (the cluster address last).
		if s.Environment.ClusterAddress != c.cluster || strings.Join(s.Environment.Addresses, ",") != c.client+","+c.cluster {
			t.Errorf("%s: GET /1.0 environment addresses %v, cluster_address %s; want [%s %s] and %s",
				c.a.Name, s.Environment.Addresses, s.Environment.ClusterAddress, c.client, c.cluster, c.cluster)
		}
		for _, addr := range []string{c.client, c.cluster} {
			if err := getOverTLS(t, addr, fp); err != nil {
				t.Errorf("%s: %v", c.a.Name, err)
			}
		}
	}
}

// getOverTLS checks GET /1.0 at addr answers over TLS with the pinned cluster certificate.
func getOverTLS(t *testing.T, addr, fingerprint string) error {
	t.Helper()
	kp, err := pki.Generate("integration test client")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := kp.TLS()
	if err != nil {
		t.Fatal(err)
	}
	cl := api.NewTLSClient(addr, api.TLSConfig(cert, fingerprint))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, _, err := cl.Server(ctx)
	if err != nil {
		return fmt.Errorf("GET https://%s/1.0: %w", addr, err)
	}
	if s.APIVersion != "1.0" {
		return fmt.Errorf("GET https://%s/1.0: api_version %q", addr, s.APIVersion)
	}
	return nil
}

// hostOf is the host part of host:port.
func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}
