package instances

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

// This harness is a trimmed copy of integration/cluster's: real nodeagent daemons, each on
// its own loopback address and agent directory, formed into a cluster through the CLI.

// raftTiming is every test daemon's raft heartbeat, election and leader-lease timeout.
const raftTiming = "300ms"

// logTail is how many lines of each member's log a failing test prints.
const logTail = 300

// agentBin is the nodeagent binary under test, set by TestMain.
var agentBin string

// nextHost hands out the last octet of each agent's loopback address.
var nextHost atomic.Int32

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests builds the agent once (unless $NODEAGENT_BIN names one) and runs the tests.
func runTests(m *testing.M) int {
	nextHost.Store(rand.Int32N(253))
	if bin := os.Getenv("NODEAGENT_BIN"); bin != "" {
		agentBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "nodeagent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration/instances:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	agentBin = filepath.Join(dir, "nodeagent")
	if err := buildAgent(agentBin); err != nil {
		fmt.Fprintln(os.Stderr, "integration/instances: building nodeagent:", err)
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
	a.waitReady()
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

// bootstrap initialises a as the first member from preseed p (its address and name added).
func bootstrap(tb testing.TB, a *agent, p api.Preseed) {
	tb.Helper()
	if p.Config == nil {
		p.Config = map[string]string{}
	}
	p.Config["core.https_address"] = a.addr
	p.Cluster = &api.ClusterPut{Enabled: true, ServerName: a.name}
	a.MustRunInput(preseedYAML(tb, p), "init", "--preseed")
}

// joinWithToken joins a to the cluster of via with a fresh token from `cluster add`.
func joinWithToken(tb testing.TB, via, a *agent) {
	tb.Helper()
	tok := strings.TrimSpace(via.MustRun("cluster", "add", a.name))
	p := api.Preseed{Cluster: &api.ClusterPut{Enabled: true, ServerName: a.name, ServerAddress: a.addr, ClusterToken: tok}}
	a.MustRunInput(preseedYAML(tb, p), "init", "--preseed")
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
