package jepsen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// agentBin is the nodeagent binary under test, built by TestMain.
var agentBin string

func TestMain(m *testing.M) {
	if path := os.Getenv(replicaEnv); path != "" {
		os.Exit(readReplicaMain(path))
	}
	dir, err := os.MkdirTemp("", "jepsen-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := 1
	if agentBin, err = buildAgent(""); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// binDir holds the agent binaries built by the tests.
var binDir string

// buildTags are the Makefile's build tags (a different set rebuilds cgo SQLite).
const buildTags = "osusergo,netgo,sqlite_omit_load_extension"

// buildAgent builds nodeagent with the Makefile's tags plus tag (a mutation's, or none).
func buildAgent(tag string) (string, error) {
	tags, name := buildTags, "nodeagent"
	if tag != "" {
		tags, name = tags+","+tag, "nodeagent-"+tag
	}
	bin := filepath.Join(binDir, name)
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, "./nodeagent/cmd/nodeagent")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building nodeagent (tags %s): %w\n%s", tags, err, out)
	}
	return bin, nil
}

// member is one nodeagent running on a lab host.
type member struct {
	host *lab.Host
	name string
	addr string // cluster and client API address

	mu     sync.Mutex
	pid    int
	paused bool
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
		m := &member{host: h, name: h.Name, addr: h.Addr + ":" + clusterPort}
		if p, ok := h.Path(agentDir + "/daemon.log"); ok {
			l.LogFile(p)
		}
		c.members = append(c.members, m)
	}
	c.setUpPartitions()
	if smallDisks {
		c.mountSmallDisks()
	}
	for _, m := range c.members {
		c.start(m)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.resume()
			if err := m.tryKill(killTimeout); err != nil {
				t.Error(err)
			}
		}
	})
	c.bootstrap(c.members[0])
	for _, m := range c.members[1:] {
		c.join(m)
	}
	c.trustClient()
	return c
}

// socket is the host-side path of m's unix socket.
func (m *member) socket() string {
	p, _ := m.host.Path(agentDir + "/unix.socket")
	return p
}

func (m *member) local() *api.Client { return api.NewUnixClient(m.socket()) }

// start launches the agent detached inside m's host (its own session, log in the agent
// directory) and waits until its socket answers; it fails the test when it cannot.
func (c *cluster) start(m *member) {
	c.t.Helper()
	if err := c.tryStart(m); err != nil {
		c.t.Fatal(err)
	}
}

// errAgentExited is tryStart's error when the agent exits before it answers (a flag it
// does not know, a database it cannot open).
var errAgentExited = errors.New("agent exited (see its log)")

// tryStart is start that returns its error.
func (c *cluster) tryStart(m *member) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m.mu.Lock()
	extra, old := strings.Join(m.args, " "), m.pid
	m.mu.Unlock()
	if old != 0 && !isZombieOrGone(old) {
		return fmt.Errorf("%s: not starting another agent: pid %d is still running", m.name, old)
	}
	script := fmt.Sprintf("mkdir -p %s && setsid %s daemon --dir %s %s >>%s/daemon.log 2>&1 </dev/null & echo $!",
		agentDir, c.bin, agentDir, extra, agentDir)
	out, err := m.host.Exec(ctx, "sh", "-c", script)
	if err != nil {
		return fmt.Errorf("%s: starting the agent: %w", m.name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("%s: agent pid %q: %w", m.name, out, err)
	}
	m.mu.Lock()
	m.pid, m.paused = pid, false
	m.mu.Unlock()
	cl := m.local()
	defer cl.Close()
	err = poll(30*time.Second, func() error {
		if isZombieOrGone(pid) {
			return fmt.Errorf("%s: pid %d: %w", m.name, pid, errAgentExited)
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		_, _, err := cl.Server(cctx)
		return err
	}, errAgentExited)
	if err != nil {
		if errors.Is(err, errAgentExited) {
			m.mu.Lock()
			m.pid = 0
			m.mu.Unlock()
		}
		return fmt.Errorf("%s: waiting for the agent to answer on its socket: %w", m.name, err)
	}
	return nil
}

// killTimeout bounds how long kill waits for a SIGKILLed agent to be gone. A killed
// process keeps its sockets until it has exited, and exiting can take seconds under load
// (its dirty pages, a loop device full of writes): its unix socket still accepts
// connections meanwhile, so an agent started then finds "the daemon is running" and exits.
const killTimeout = 2 * time.Minute

// errStillRunning is kill's error when the agent outlived killTimeout.
var errStillRunning = errors.New("still running after SIGKILL")

// kill sends SIGKILL to m's agent (by PID) and waits until its process is gone; it fails
// the test when the process outlives killTimeout. The PID is forgotten only once the
// process is gone, so that a later kill (the test's cleanup) still finds it.
func (m *member) kill(t testing.TB) {
	t.Helper()
	if err := m.tryKill(killTimeout); err != nil {
		t.Fatal(err)
	}
}

// tryKill is kill that returns its error instead of failing the test.
func (m *member) tryKill(timeout time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pid == 0 {
		return nil
	}
	_ = syscall.Kill(m.pid, syscall.SIGKILL)
	deadline := time.Now().Add(timeout)
	for !isZombieOrGone(m.pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: agent pid %d: %w for %v", m.name, m.pid, errStillRunning, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.pid, m.paused = 0, false
	return nil
}

// isZombieOrGone reports whether pid has exited (a zombie waits for its reaper). Every
// thread counts: after SIGKILL the thread-group leader can be a zombie while another
// thread is still finishing a write to a full disk, and until that one is gone the
// process keeps its files and sockets open (its unix socket still answered, so the next
// agent refused to start: "the daemon is running").
func isZombieOrGone(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, task := range tasks {
		if !statZombieOrGone(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name())) {
			return false
		}
	}
	return true
}

// statZombieOrGone reports whether the task of a /proc stat file is a zombie or gone.
func statZombieOrGone(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// pause sends SIGSTOP to m's agent; resume sends SIGCONT.
func (m *member) pause() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pid != 0 && !m.paused {
		_ = syscall.Kill(m.pid, syscall.SIGSTOP)
		m.paused = true
	}
}

func (m *member) resume() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pid != 0 && m.paused {
		_ = syscall.Kill(m.pid, syscall.SIGCONT)
		m.paused = false
	}
}

func (m *member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pid != 0
}

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
		m.mu.Lock()
		up := m.pid != 0 && !m.paused
		m.mu.Unlock()
		if !up {
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

// poll calls cond until it returns nil, an error that is one of final, or timeout passes;
// it returns cond's last error.
func poll(timeout time.Duration, cond func() error, final ...error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || slices.ContainsFunc(final, func(f error) bool { return errors.Is(err, f) }) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
