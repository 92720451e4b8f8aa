package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// raftTiming is every test daemon's raft heartbeat, election and leader-lease timeout:
// shorter than the 500ms defaults so failover takes well under a second, long enough not to
// flap on a shared 2-core machine.
const raftTiming = "300ms"

// trustPassword is the trust password of the clusters formCluster bootstraps.
const trustPassword = "sekret-trust-pw"

// logTail is how many lines of each member's log a failing test prints.
const logTail = 400

// agentBin is the nodeagent binary under test, set by TestMain.
var agentBin string

// binDir is a directory TestMain removes at the end, for binaries built on demand.
var binDir string

// nextHost hands out the last octet of each agent's loopback address; it starts at a random
// point so that test binaries running side by side rarely pick the same addresses.
var nextHost atomic.Int32

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests builds the agent once (unless $NODEAGENT_BIN names one) and runs the tests.
func runTests(m *testing.M) int {
	nextHost.Store(rand.Int32N(253))
	dir, err := os.MkdirTemp("", "nodeagent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration/cluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	if bin := os.Getenv("NODEAGENT_BIN"); bin != "" {
		agentBin = bin
		return m.Run()
	}
	agentBin = filepath.Join(dir, "nodeagent")
	if err := buildAgent(agentBin); err != nil {
		fmt.Fprintln(os.Stderr, "integration/cluster: building nodeagent:", err)
		return 1
	}
	return m.Run()
}

// projectTags are the build tags every build of the project uses (see the Makefile).
const projectTags = "osusergo,netgo,sqlite_omit_load_extension"

// buildAgent runs `go build -o out ./nodeagent/cmd/nodeagent` from the module root with the
// project's build tags (GOFLAGS from the environment when set); extraTags, when given, are
// added to the project's tags (e.g. schemav2 for the upgraded binary of upgrade tests).
func buildAgent(out string, extraTags ...string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", out}
	if len(extraTags) > 0 {
		args = append(args, "-tags="+projectTags+","+strings.Join(extraTags, ","))
	}
	cmd := exec.Command("go", append(args, "./nodeagent/cmd/nodeagent")...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if os.Getenv("GOFLAGS") == "" {
		cmd.Env = append(cmd.Env, "GOFLAGS=-tags="+projectTags)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// moduleRoot is the nearest directory above the working directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// newAddr returns a free TCP address on a loopback IP of its own, 127.0.0.N with N cycling
// through 2..254, so members of tests running in parallel never share an IP.
func newAddr(tb testing.TB) string {
	tb.Helper()
	n := 2 + (nextHost.Add(1)-1)%253
	return freePort(tb, fmt.Sprintf("127.0.0.%d", n))
}

// freePort returns ip:port with a port that was free a moment ago.
func freePort(tb testing.TB, ip string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatalf("finding a free port on %s: %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// agent is one nodeagent daemon process, its agent directory and its log.
type agent struct {
	tb      testing.TB
	name    string // member name
	addr    string // cluster address given at init (host:port)
	dir     string // agent directory (--dir)
	logPath string

	// bin is the binary Start runs ("" means agentBin); set it with StartWith.
	bin string
	// defaultRaft starts the daemon with the production raft timings instead of raftTiming.
	defaultRaft bool
	// daemonArgs are added to `nodeagent daemon` (e.g. --debug-clock-offset=60s).
	daemonArgs []string

	mu     sync.Mutex
	proc   *exec.Cmd
	done   chan struct{} // closed once proc has exited
	starts int
	cl     *api.Client
}

// runResult is what one CLI invocation produced.
type runResult struct {
	Stdout, Stderr string
	Code           int
}

// startAgent starts a daemon for member name (to be reachable at addr once initialised) in
// a fresh agent directory and waits until its socket answers. Cleanup kills it by PID and,
// when the test failed, prints the tail of its log prefixed with "[name] ".
func startAgent(tb testing.TB, name, addr string) *agent {
	tb.Helper()
	a := newAgent(tb, name, addr)
	a.Start()
	return a
}

// newAgent prepares an agent directory and log for member name, with its cleanup, without
// starting the daemon.
func newAgent(tb testing.TB, name, addr string) *agent {
	tb.Helper()
	base, err := os.MkdirTemp("", "na-"+name+"-")
	if err != nil {
		tb.Fatal(err)
	}
	a := &agent{tb: tb, name: name, addr: addr, dir: filepath.Join(base, "d"), logPath: filepath.Join(base, "daemon.log")}
	if err := os.Mkdir(a.dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		a.killQuietly()
		if tb.Failed() {
			a.dumpLog()
		}
		if a.cl != nil {
			a.cl.Close()
		}
		_ = os.RemoveAll(base)
	})
	return a
}

// Start starts the daemon on the agent's directory and waits until its socket answers.
func (a *agent) Start() {
	a.tb.Helper()
	a.Launch()
	a.waitReady()
}

// Launch starts the daemon on the agent's directory without waiting for it to answer.
func (a *agent) Launch() {
	a.tb.Helper()
	a.mu.Lock()
	if a.proc != nil {
		a.mu.Unlock()
		a.tb.Fatalf("%s: Start: the daemon is already running (pid %d)", a.name, a.proc.Process.Pid)
	}
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		a.mu.Unlock()
		a.tb.Fatal(err)
	}
	a.starts++
	fmt.Fprintf(logf, "=== test harness: start %d\n", a.starts)
	bin, args := agentBin, []string{"daemon", "--dir", a.dir}
	if a.bin != "" {
		bin = a.bin
	}
	if !a.defaultRaft {
		args = append(args, "--raft-heartbeat", raftTiming, "--raft-election", raftTiming, "--raft-leader-lease", raftTiming)
	}
	args = append(args, a.daemonArgs...)
	fmt.Fprintf(logf, "=== test harness: %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = agentEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Should the test binary die, its daemons die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	logf.Close()
	if err != nil {
		a.mu.Unlock()
		a.tb.Fatalf("%s: starting the daemon: %v", a.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	a.proc, a.done = cmd, done
	if a.cl != nil {
		a.cl.Close()
	}
	a.cl = api.NewUnixClient(filepath.Join(a.dir, "unix.socket"))
	a.mu.Unlock()
}

// waitReady waits until GET /1.0 answers on the socket, failing at once if the daemon exits.
func (a *agent) waitReady() {
	a.tb.Helper()
	wait.For(a.tb, 15*time.Second, a.name+" answering on its socket", func() error {
		if !a.Running() {
			a.tb.Fatalf("%s: the daemon exited while starting (see its log)", a.name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, err := a.Client().Server(ctx)
		return err
	})
}

// StartWith starts the daemon with another binary (an upgrade or a downgrade); later Starts
// and the agent's CLI use it too.
func (a *agent) StartWith(bin string) {
	a.tb.Helper()
	a.mu.Lock()
	a.bin = bin
	a.mu.Unlock()
	a.Start()
}

// Running reports whether the daemon process is alive.
func (a *agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// PID is the daemon's process ID (0 when not running).
func (a *agent) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return 0
	}
	return a.proc.Process.Pid
}

// Kill sends SIGKILL to the daemon (by PID) and waits until it has exited.
func (a *agent) Kill() {
	a.tb.Helper()
	if err := a.signalAndWait(syscall.SIGKILL, 10*time.Second); err != nil {
		a.tb.Fatalf("%s: kill -9: %v", a.name, err)
	}
}

// Stop sends SIGTERM and waits until the daemon has exited; it returns the exit code.
func (a *agent) Stop() int {
	a.tb.Helper()
	a.mu.Lock()
	proc := a.proc
	a.mu.Unlock()
	if proc == nil {
		a.tb.Fatalf("%s: Stop: not running", a.name)
	}
	if err := a.signalAndWait(syscall.SIGTERM, 30*time.Second); err != nil {
		a.killQuietly()
		a.tb.Fatalf("%s: stop: %v", a.name, err)
	}
	return proc.ProcessState.ExitCode()
}

func (a *agent) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	a.mu.Lock()
	proc, done := a.proc, a.done
	a.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := syscall.Kill(proc.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling pid %d: %w", proc.Process.Pid, err)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		return fmt.Errorf("pid %d still running %s after %v", proc.Process.Pid, timeout, sig)
	}
	a.mu.Lock()
	a.proc, a.done = nil, nil
	a.mu.Unlock()
	return nil
}

// killQuietly is Kill for cleanups: it never fails the test.
func (a *agent) killQuietly() {
	if err := a.signalAndWait(syscall.SIGKILL, 10*time.Second); err != nil {
		a.tb.Logf("%s: %v", a.name, err)
	}
}

// Client is an API client of the daemon's unix socket.
func (a *agent) Client() *api.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cl
}

// Run runs the agent's CLI against its directory.
func (a *agent) Run(args ...string) runResult { return a.RunInput("", args...) }

// RunInput runs the agent's CLI against its directory with stdin.
func (a *agent) RunInput(stdin string, args ...string) runResult {
	a.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a.mu.Lock()
	bin := a.bin
	a.mu.Unlock()
	if bin == "" {
		bin = agentBin
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--dir", a.dir}, args...)...)
	cmd.Env = agentEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := runResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		a.tb.Fatalf("%s: nodeagent %s: %v", a.name, strings.Join(args, " "), err)
	}
	return res
}

// MustRun runs the CLI and fails the test unless it exits 0; it returns stdout.
func (a *agent) MustRun(args ...string) string { return a.MustRunInput("", args...) }

// MustRunInput is MustRun with stdin.
func (a *agent) MustRunInput(stdin string, args ...string) string {
	a.tb.Helper()
	r := a.RunInput(stdin, args...)
	if r.Code != 0 {
		a.tb.Fatalf("%s: nodeagent %s: exit %d: %s", a.name, strings.Join(args, " "), r.Code, strings.TrimSpace(r.Stderr))
	}
	return r.Stdout
}

// agentEnv is the environment of agent processes: the test's, without NODEAGENT_DIR.
func agentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NODEAGENT_DIR=") {
			env = append(env, kv)
		}
	}
	return env
}

// dumpLog prints the tail of the member's log, each line prefixed with "[name] ".
func (a *agent) dumpLog() {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		a.tb.Logf("[%s] no log: %v", a.name, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var sb strings.Builder
	if len(lines) > logTail {
		fmt.Fprintf(&sb, "[%s] ... %d earlier lines\n", a.name, len(lines)-logTail)
		lines = lines[len(lines)-logTail:]
	}
	for _, l := range lines {
		fmt.Fprintf(&sb, "[%s] %s\n", a.name, l)
	}
	a.tb.Logf("log of %s (%s):\n%s", a.name, a.dir, sb.String())
}

// startAgents starts n daemons named node1..nodeN, each on its own loopback address.
func startAgents(tb testing.TB, n int) []*agent {
	tb.Helper()
	ms := make([]*agent, n)
	for i := range ms {
		ms[i] = startAgent(tb, fmt.Sprintf("node%d", i+1), newAddr(tb))
	}
	return ms
}

// formCluster starts n daemons, bootstraps node1 from a preseed with a trust password and
// joins the others with join tokens from `cluster add`, in order.
func formCluster(tb testing.TB, n int) []*agent {
	tb.Helper()
	ms := startAgents(tb, n)
	form(tb, ms)
	return ms
}

// form bootstraps ms[0] and joins the rest with tokens.
func form(tb testing.TB, ms []*agent) {
	tb.Helper()
	bootstrap(tb, ms[0], api.Preseed{})
	for _, m := range ms[1:] {
		joinWithToken(tb, ms[0], m)
	}
}

// bootstrap initialises a as the first member from a preseed: extra's sections plus the
// trust password, a's address and name.
func bootstrap(tb testing.TB, a *agent, extra api.Preseed) {
	tb.Helper()
	p := extra
	p.Config = map[string]string{"core.trust_password": trustPassword, "core.https_address": a.addr}
	for k, v := range extra.Config {
		p.Config[k] = v
	}
	p.Cluster = &api.ClusterPut{Enabled: true, ServerName: a.name}
	a.MustRunInput(preseedYAML(tb, p), "init", "--preseed")
}

// joinWithToken joins a to the cluster of via with a fresh token from `cluster add`.
func joinWithToken(tb testing.TB, via, a *agent) {
	tb.Helper()
	a.MustRunInput(preseedYAML(tb, tokenPreseed(a, newToken(tb, via, a.name))), "init", "--preseed")
}

// newToken runs `cluster add name` on via and returns the token it prints.
func newToken(tb testing.TB, via *agent, name string) string {
	tb.Helper()
	tok := strings.TrimSpace(via.MustRun("cluster", "add", name))
	if tok == "" {
		tb.Fatalf("%s: cluster add %s printed no token", via.name, name)
	}
	return tok
}

// tokenPreseed is a joining member's preseed with a join token.
func tokenPreseed(a *agent, token string) api.Preseed {
	return api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: a.name, ServerAddress: a.addr, ClusterToken: token}}
}

// passwordPreseed is a joining member's preseed with the cluster's address, certificate
// and a trust password, as the guide's second example.
func passwordPreseed(a *agent, clusterAddr, certPEM, password string) api.Preseed {
	return api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: a.name, ServerAddress: a.addr,
		ClusterAddress: clusterAddr, ClusterCertificate: certPEM, ClusterPassword: password}}
}

// preseedYAML renders a preseed as the YAML document `init --preseed` reads.
func preseedYAML(tb testing.TB, p api.Preseed) string {
	tb.Helper()
	b, err := yaml.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// clusterCert reads a member's cluster certificate (PEM).
func clusterCert(tb testing.TB, a *agent) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(a.dir, "cluster.crt"))
	if err != nil {
		tb.Fatalf("%s: %v", a.name, err)
	}
	return string(b)
}

// listMembers is GET /1.0/cluster/members through a's socket.
func listMembers(a *agent) ([]api.ClusterMember, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return a.Client().Members(ctx)
}

// roleMap maps member names to their roles joined by "," ("" for none).
func roleMap(ms []api.ClusterMember) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		out[m.ServerName] = strings.Join(m.Roles, ",")
	}
	return out
}

// isVoter reports whether roles (as roleMap gives them) hold a database vote.
func isVoter(roles string) bool {
	return roles == api.RoleDatabase || roles == api.RoleDatabaseLeader+","+api.RoleDatabase
}

// waitRoles waits until `GET /1.0/cluster/members` through via satisfies check.
func waitRoles(tb testing.TB, via *agent, timeout time.Duration, what string, check func(map[string]string) error) {
	tb.Helper()
	wait.For(tb, timeout, what, func() error {
		ms, err := listMembers(via)
		if err != nil {
			return err
		}
		return check(roleMap(ms))
	})
}

// countRoles counts voters, stand-bys, spares and leaders in a role map.
func countRoles(roles map[string]string) (voters, standby, spare, leaders int) {
	for _, r := range roles {
		switch {
		case isVoter(r):
			voters++
			if strings.HasPrefix(r, api.RoleDatabaseLeader) {
				leaders++
			}
		case r == api.RoleDatabaseStandby:
			standby++
		case r == "":
			spare++
		}
	}
	return
}

// wantRoleCounts returns a check that the cluster has exactly these role counts and a leader.
func wantRoleCounts(voters, standby, spare int) func(map[string]string) error {
	return func(roles map[string]string) error {
		v, s, sp, l := countRoles(roles)
		if v != voters || s != standby || sp != spare || l != 1 {
			return fmt.Errorf("roles %v: %d voters (%d leaders), %d stand-by, %d spare; want %d, %d, %d and one leader",
				roles, v, l, s, sp, voters, standby, spare)
		}
		return nil
	}
}

// leaderOf returns the member of ms that holds database-leader, waiting for one.
func leaderOf(tb testing.TB, ms []*agent) *agent {
	tb.Helper()
	var leader *agent
	wait.For(tb, 15*time.Second, "a database leader", func() error {
		var lastErr error = errors.New("no member running")
		for _, via := range ms {
			if !via.Running() {
				continue
			}
			list, err := listMembers(via)
			if err != nil {
				lastErr = err
				continue
			}
			for name, r := range roleMap(list) {
				if strings.HasPrefix(r, api.RoleDatabaseLeader) {
					if leader = byName(ms, name); leader != nil {
						return nil
					}
				}
			}
			lastErr = fmt.Errorf("no leader in %v", roleMap(list))
		}
		return lastErr
	})
	return leader
}

// byName finds a member by name.
func byName(ms []*agent, name string) *agent {
	for _, m := range ms {
		if m.name == name {
			return m
		}
	}
	return nil
}

// server is GET /1.0 through a's socket with its ETag.
func server(tb testing.TB, a *agent) (*api.Server, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, etag, err := a.Client().Server(ctx)
	if err != nil {
		tb.Fatalf("%s: GET /1.0: %v", a.name, err)
	}
	return s, etag
}
