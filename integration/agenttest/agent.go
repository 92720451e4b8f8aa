package agenttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/api"
)

// RaftTiming is every test daemon's raft heartbeat, election and leader-lease timeout
// (unless DefaultRaft): shorter than the 500ms defaults so failover takes well under a
// second, long enough not to flap on a shared 2-core machine.
const RaftTiming = "300ms"

// logTail is how many lines of each member's log a failing test prints.
const logTail = 400

// Agent is one nodeagent daemon process, the test's child, with its agent directory and its
// log. Set the exported option fields before Start.
type Agent struct {
	tb      testing.TB
	Name    string // member name
	Addr    string // cluster address given at init (host:port)
	Dir     string // agent directory (--dir)
	LogPath string // the daemon's output, appended across restarts

	// Bin is the binary Start runs ("" means Bin()); set it with StartWith.
	Bin string
	// DefaultRaft starts the daemon with the production raft timings instead of RaftTiming.
	DefaultRaft bool
	// DaemonArgs are added to `nodeagent daemon` (e.g. --debug-clock-offset=60s).
	DaemonArgs []string

	mu     sync.Mutex
	proc   *Proc
	starts int
	cl     *api.Client
}

// Result is what one CLI invocation produced.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Start starts a daemon for member name (to be reachable at addr once initialised) in
// a fresh agent directory and waits until its socket answers. Cleanup kills it by PID and,
// when the test failed, prints the tail of its log prefixed with "[name] ".
func Start(tb testing.TB, name, addr string) *Agent {
	tb.Helper()
	a := New(tb, name, addr)
	a.Start()
	return a
}

// New prepares an agent directory and log for member name, with its cleanup, without
// starting the daemon.
func New(tb testing.TB, name, addr string) *Agent {
	tb.Helper()
	base, err := os.MkdirTemp("", "na-"+name+"-")
	if err != nil {
		tb.Fatal(err)
	}
	a := &Agent{tb: tb, Name: name, Addr: addr, Dir: filepath.Join(base, "d"), LogPath: filepath.Join(base, "daemon.log")}
	if err := os.Mkdir(a.Dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		a.KillQuietly()
		if tb.Failed() {
			a.DumpLog()
		}
		if a.cl != nil {
			a.cl.Close()
		}
		_ = os.RemoveAll(base)
	})
	return a
}

// Start starts the daemon on the agent's directory and waits until its socket answers.
func (a *Agent) Start() {
	a.tb.Helper()
	a.Launch()
	a.WaitReady()
}

// Launch starts the daemon on the agent's directory without waiting for it to answer.
func (a *Agent) Launch() {
	a.tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil {
		a.tb.Fatalf("%s: Start: the daemon is already running (pid %d)", a.Name, a.proc.PID())
	}
	a.starts++
	bin, args := a.binLocked(), a.daemonArgsLocked()
	header := fmt.Sprintf("=== test harness: start %d\n=== test harness: %s %s\n", a.starts, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = Env()
	p, err := Spawn(cmd, a.LogPath, header)
	if err != nil {
		a.tb.Fatalf("%s: starting the daemon: %v", a.Name, err)
	}
	a.proc = p
	if a.cl != nil {
		a.cl.Close()
	}
	a.cl = a.Local()
}

// daemonArgsLocked is the `nodeagent daemon` command line of the next start.
func (a *Agent) daemonArgsLocked() []string {
	args := []string{"daemon", "--dir", a.Dir}
	if !a.DefaultRaft {
		args = append(args, "--raft-heartbeat", RaftTiming, "--raft-election", RaftTiming, "--raft-leader-lease", RaftTiming)
	}
	return append(args, a.DaemonArgs...)
}

// binLocked is the binary the agent runs.
func (a *Agent) binLocked() string {
	if a.Bin != "" {
		return a.Bin
	}
	return bin
}

// WaitReady waits until GET /1.0 answers on the socket, failing at once if the daemon exits.
func (a *Agent) WaitReady() {
	a.tb.Helper()
	wait.For(a.tb, 15*time.Second, a.Name+" answering on its socket", func() error {
		if !a.Running() {
			a.tb.Fatalf("%s: the daemon exited while starting (see its log)", a.Name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _, err := a.Client().Server(ctx)
		return err
	})
}

// StartWith starts the daemon with another binary (an upgrade or a downgrade); later Starts
// and the agent's CLI use it too.
func (a *Agent) StartWith(bin string) {
	a.tb.Helper()
	a.mu.Lock()
	a.Bin = bin
	a.mu.Unlock()
	a.Start()
}

// Running reports whether the daemon process is alive.
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc != nil && !a.proc.Exited()
}

// PID is the daemon's process ID (0 when not running).
func (a *Agent) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc == nil {
		return 0
	}
	return a.proc.PID()
}

// Kill sends SIGKILL to the daemon (by PID) and waits until it has exited.
func (a *Agent) Kill() {
	a.tb.Helper()
	if _, err := a.signalAndWait(syscall.SIGKILL, 10*time.Second); err != nil {
		a.tb.Fatalf("%s: kill -9: %v", a.Name, err)
	}
}

// Stop sends SIGTERM and waits until the daemon has exited; it returns the exit code.
func (a *Agent) Stop() int {
	a.tb.Helper()
	p, err := a.signalAndWait(syscall.SIGTERM, 30*time.Second)
	switch {
	case p == nil:
		a.tb.Fatalf("%s: Stop: not running", a.Name)
	case err != nil:
		a.KillQuietly()
		a.tb.Fatalf("%s: stop: %v", a.Name, err)
	}
	return p.ExitCode()
}

// signalAndWait signals the running daemon and forgets it once it has exited; it returns
// the process it signalled (nil when none was running).
func (a *Agent) signalAndWait(sig syscall.Signal, timeout time.Duration) (*Proc, error) {
	a.mu.Lock()
	p := a.proc
	a.mu.Unlock()
	if p == nil {
		return nil, nil
	}
	if err := p.SignalAndWait(sig, timeout); err != nil {
		return p, err
	}
	a.mu.Lock()
	if a.proc == p {
		a.proc = nil
	}
	a.mu.Unlock()
	return p, nil
}

// KillQuietly is Kill for cleanups: it never fails the test.
func (a *Agent) KillQuietly() {
	if _, err := a.signalAndWait(syscall.SIGKILL, 10*time.Second); err != nil {
		a.tb.Logf("%s: %v", a.Name, err)
	}
}

// Client is the agent's API client of the daemon's unix socket, shared by the test: do not
// close it.
func (a *Agent) Client() *api.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cl
}

// Local is a new API client of the daemon's unix socket; the caller closes it.
func (a *Agent) Local() *api.Client { return api.NewUnixClient(filepath.Join(a.Dir, "unix.socket")) }

// Run runs the agent's CLI against its directory.
func (a *Agent) Run(args ...string) Result { return a.RunInput("", args...) }

// RunInput runs the agent's CLI against its directory with stdin.
func (a *Agent) RunInput(stdin string, args ...string) Result {
	a.tb.Helper()
	a.mu.Lock()
	bin := a.binLocked()
	a.mu.Unlock()
	res, err := RunCLI(bin, a.Dir, stdin, args...)
	if err != nil {
		a.tb.Fatalf("%s: %v", a.Name, err)
	}
	return res
}

// MustRun runs the CLI and fails the test unless it exits 0; it returns stdout.
func (a *Agent) MustRun(args ...string) string { return a.MustRunInput("", args...) }

// MustRunInput is MustRun with stdin.
func (a *Agent) MustRunInput(stdin string, args ...string) string {
	a.tb.Helper()
	return mustSucceed(a.tb, a.Name, a.RunInput(stdin, args...), args)
}

// mustSucceed fails the test unless r exited 0; it returns r's stdout.
func mustSucceed(tb testing.TB, name string, r Result, args []string) string {
	tb.Helper()
	if r.Code != 0 {
		tb.Fatalf("%s: nodeagent %s: exit %d: %s", name, strings.Join(args, " "), r.Code, strings.TrimSpace(r.Stderr))
	}
	return r.Stdout
}

// WantFailure fails the test unless r failed with every substring in its stderr.
func WantFailure(tb testing.TB, r Result, substrings ...string) {
	tb.Helper()
	if r.Code == 0 {
		tb.Fatalf("command succeeded, want an error containing %q:\n%s", substrings, r.Stdout)
	}
	for _, s := range substrings {
		if !strings.Contains(r.Stderr, s) {
			tb.Fatalf("error %q does not contain %q", strings.TrimSpace(r.Stderr), s)
		}
	}
}

// RunCLI runs `bin --dir dir args...` with stdin (90s at the most) and returns its output
// and exit code; the error is for a command that could not run at all.
func RunCLI(bin, dir, stdin string, args ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--dir", dir}, args...)...)
	cmd.Env = Env()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		return res, fmt.Errorf("nodeagent %s: %w", strings.Join(args, " "), err)
	}
	return res, nil
}

// Env is the environment of agent processes: the test's, without NODEAGENT_DIR.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NODEAGENT_DIR=") {
			env = append(env, kv)
		}
	}
	return env
}

// DumpLog prints the tail of the member's log, each line prefixed with "[name] ".
func (a *Agent) DumpLog() {
	b, err := os.ReadFile(a.LogPath)
	if err != nil {
		a.tb.Logf("[%s] no log: %v", a.Name, err)
		return
	}
	a.tb.Logf("log of %s (%s):\n%s", a.Name, a.Dir, prefixTail(a.Name, b, logTail))
}

// prefixTail is the last n lines of b, each prefixed with "[name] ".
func prefixTail(name string, b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var sb strings.Builder
	if len(lines) > n {
		fmt.Fprintf(&sb, "[%s] ... %d earlier lines\n", name, len(lines)-n)
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		fmt.Fprintf(&sb, "[%s] %s\n", name, l)
	}
	return sb.String()
}
