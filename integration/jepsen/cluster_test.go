package jepsen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
)

// agentDir is the agent directory inside every test host.
const agentDir = "/var/lib/nodeagent"

// clusterPort is the members' cluster and client API port.
const clusterPort = "8443"

// trustPassword is the trust password of the test clusters (joins use tokens).
const trustPassword = "jepsen-trust-pw"

// agentBin is the nodeagent binary under test, built by TestMain (agenttest.Main).
var agentBin string

func TestMain(m *testing.M) {
	if path := os.Getenv(replicaEnv); path != "" {
		os.Exit(readReplicaMain(path))
	}
	os.Exit(agenttest.Main(m, func() error { agentBin = agenttest.Bin(); return nil }))
}

// buildAgent builds nodeagent with the project's tags plus a mutation's tag.
func buildAgent(tag string) (string, error) {
	bin := filepath.Join(agenttest.BinDir(), "nodeagent-"+tag)
	return bin, agenttest.BuildAgent(bin, tag)
}

// member is one nodeagent running on a lab host.
type member struct {
	host *lab.Host
	name string
	addr string // cluster and client API address

	// agent runs the member's daemon (production raft timings) by PID.
	agent *agenttest.HostAgent

	mu     sync.Mutex
	args   []string // extra `nodeagent daemon` flags of the next start (a fault's)
	filled bool     // its database filesystem was filled by the nemesis
}

// cluster is a formed cluster on a lab, and the trusted client certificate of the workload.
type cluster struct {
	t   testing.TB
	bin string // the nodeagent binary the members run
	// smallDisks: every member's database directory is a small loop filesystem (disk_test.go).
	smallDisks bool
	lab        *lab.Lab
	members    []*member
	cert       tls.Certificate // the workload's client certificate, trusted with `nodeagent trust add`
	fp         string          // the cluster certificate's fingerprint, pinned by clients
}

// newCluster creates n lab hosts, starts an agent on each and forms a cluster: the first
// bootstraps, the others join with tokens. The workload's client certificate is trusted
// through `nodeagent trust add` on the first member.
// Every member's namespace gets the partition table, and (with smallDisks) its database
// directory is a small loop-mounted filesystem.
func newCluster(t testing.TB, n int, bin string, smallDisks bool) *cluster {
	t.Helper()
	l := lab.New(t, n)
	c := &cluster{t: t, lab: l, bin: bin, smallDisks: smallDisks}
	for _, h := range l.Hosts() {
		c.members = append(c.members, &member{host: h, name: h.Name, addr: h.Addr + ":" + clusterPort})
	}
	c.setUpPartitions()
	if smallDisks {
		c.mountSmallDisks()
	}
	for _, m := range c.members {
		// After the small disks: the agents' cleanup (resume, kill, log on failure) runs
		// before the disks are unmounted.
		m.agent = agenttest.NewHostAgent(t, m.host, m.name, bin)
		m.agent.DefaultRaft = true
		c.start(m)
	}
	c.bootstrap(c.members[0])
	for _, m := range c.members[1:] {
		c.join(m)
	}
	c.trustClient()
	return c
}

func (m *member) local() *api.Client { return m.agent.Local() }

// start launches the agent detached inside m's host (its own session, log in the agent
// directory) and waits until its socket answers; it fails the test when it cannot.
func (c *cluster) start(m *member) {
	c.t.Helper()
	if err := c.tryStart(m); err != nil {
		c.t.Fatal(err)
	}
}

// tryStart is start that returns its error (wrapping agenttest.ErrExited when the agent
// exits before it answers: a flag it does not know, a database it cannot open).
func (c *cluster) tryStart(m *member) error {
	m.mu.Lock()
	extra := append([]string(nil), m.args...)
	m.mu.Unlock()
	return m.agent.TryStart(extra...)
}

// kill sends SIGKILL to m's agent (by PID) and waits until its process is gone (every
// thread: agenttest.Exited); it fails the test when the process outlives
// agenttest.KillTimeout.
func (m *member) kill(t testing.TB) {
	t.Helper()
	if err := m.agent.TryKill(agenttest.KillTimeout); err != nil {
		t.Fatal(err)
	}
}

// pause sends SIGSTOP to m's agent; resume sends SIGCONT.
func (m *member) pause()  { m.agent.Pause() }
func (m *member) resume() { m.agent.Resume() }

func (m *member) running() bool { return m.agent.Running() }

func (c *cluster) bootstrap(m *member) {
	c.t.Helper()
	cl := m.local()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cl.Init(ctx, api.InitPost{Preseed: api.Preseed{
		Config:  map[string]string{"core.https_address": m.addr, "core.trust_password": trustPassword},
		Cluster: &api.ClusterPut{Enabled: true, ServerName: m.name},
	}})
	if err != nil {
		c.t.Fatalf("%s: bootstrap: %v", m.name, err)
	}
	srv, _, err := cl.Server(ctx)
	if err != nil {
		c.t.Fatalf("%s: %v", m.name, err)
	}
	c.fp = srv.Environment.CertificateFingerprint
}

// join issues a token on the first member and joins m with it.
func (c *cluster) join(m *member) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := c.members[0].local()
	defer first.Close()
	tok, err := first.CreateToken(ctx, m.name)
	if err != nil {
		c.t.Fatalf("token for %s: %v", m.name, err)
	}
	cl := m.local()
	defer cl.Close()
	err = cl.Init(ctx, api.InitPost{Preseed: api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: m.name,
		ServerAddress: m.addr, ClusterAddress: c.members[0].addr, ClusterToken: tok.Token}}})
	if err != nil {
		c.t.Fatalf("%s: join: %v", m.name, err)
	}
}

// trustClient makes the workload's certificate and trusts it with `nodeagent trust add`
// run inside the first member's host.
func (c *cluster) trustClient() {
	c.t.Helper()
	kp, err := pki.Generate("jepsen client")
	if err != nil {
		c.t.Fatal(err)
	}
	if c.cert, err = kp.TLS(); err != nil {
		c.t.Fatal(err)
	}
	m := c.members[0]
	p, _ := m.host.Path(agentDir + "/jepsen-client.crt")
	if err := os.WriteFile(p, kp.CertPEM, 0o600); err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	script := fmt.Sprintf("%s --dir %s trust add jepsen < %s/jepsen-client.crt", c.bin, agentDir, agentDir)
	if out, err := m.host.Exec(ctx, "sh", "-c", script); err != nil {
		c.t.Fatalf("%s: nodeagent trust add: %v %s", m.name, err, out)
	}
}

// client is an HTTPS client of m's client API with the workload's certificate.
func (c *cluster) client(m *member) *api.Client {
	return api.NewTLSClient(m.addr, api.TLSConfig(c.cert, c.fp))
}

// leader returns the member whose raft role is leader, as the members' list says, or nil.
func (c *cluster) leader() *member { return c.leaderSeenBy(c.members) }

// leaderSeenBy asks the running, unpaused members of ms (through their sockets) who leads.
func (c *cluster) leaderSeenBy(ms []*member) *member {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, m := range ms {
		if !m.agent.Up() {
			continue
		}
		cl := m.local()
		ms, err := cl.Members(ctx)
		cl.Close()
		if err != nil {
			continue
		}
		for _, v := range ms {
			for _, r := range v.Roles {
				if r == api.RoleDatabaseLeader {
					return c.byName(v.ServerName)
				}
			}
		}
	}
	return nil
}

// withRole lists the members that have role, as the members' list says.
func (c *cluster) withRole(role string) []*member {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, m := range c.members {
		cl := m.local()
		ms, err := cl.Members(ctx)
		cl.Close()
		if err != nil {
			continue
		}
		var out []*member
		for _, v := range ms {
			if slices.Contains(v.Roles, role) {
				out = append(out, c.byName(v.ServerName))
			}
		}
		return out
	}
	return nil
}

func (c *cluster) byName(name string) *member {
	for _, m := range c.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

// healAll ends every fault: links up, member-to-member paths back, agents resumed,
// stopped agents started (without a fault's extra flags), full disks freed.
func (c *cluster) healAll() {
	c.t.Helper()
	c.healCuts()
	for _, m := range c.members {
		if err := m.host.Heal(); err != nil {
			c.t.Fatal(err)
		}
		m.resume()
		if m.freeDisk() {
			m.kill(c.t) // a database that hit ENOSPC is broken until the member restarts
		}
		m.mu.Lock()
		restart := len(m.args) > 0
		m.args = nil
		m.mu.Unlock()
		if restart {
			m.kill(c.t)
		}
		if !m.running() {
			c.start(m)
		}
	}
}

// waitHealthy waits until every member answers a trusted GET /1.0 over HTTPS.
func (c *cluster) waitHealthy(timeout time.Duration) {
	c.t.Helper()
	for _, m := range c.members {
		cl := c.client(m)
		wait.For(c.t, timeout, m.name+" serving the client API", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			s, _, err := cl.Server(ctx)
			if err == nil && s.Auth != "trusted" {
				err = errors.New("the client certificate is not trusted")
			}
			return err
		})
		cl.Close()
	}
}

// poll calls cond every 50ms until it returns nil, an error that is one of final, or
// timeout passes; it returns cond's last error.
func poll(timeout time.Duration, cond func() error, final ...error) error {
	return wait.UntilEvery(timeout, 50*time.Millisecond, func() error {
		err := cond()
		if err != nil && slices.ContainsFunc(final, func(f error) bool { return errors.Is(err, f) }) {
			return wait.Stop(err)
		}
		return err
	})
}
