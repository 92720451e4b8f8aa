package agenttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"orch/integration/lab"
	"orch/internal/shell"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// HostDir is the agent directory inside a lab host.
const HostDir = "/var/lib/nodeagent"

// ErrExited is HostAgent.TryStart's error when the daemon exits before it answers (a flag it
// does not know, a database it cannot open).
var ErrExited = errors.New("agent exited (see its log)")

// HostAgent is a nodeagent daemon started detached inside a lab host (its own session in
// the host's namespaces, its log in HostDir/daemon.log). It is not the test's child: it is
// tracked by PID and its exit seen in /proc. The cleanup resumes and kills it before the
// lab closes, and prints its log when the test failed.
type HostAgent struct {
	tb   testing.TB
	Host *lab.Host
	Name string
	// Bin is the binary the daemon and the CLI run (lab hosts see the root filesystem).
	Bin string
	// DefaultRaft starts the daemon with the production raft timings instead of RaftTiming.
	DefaultRaft bool
	// Dir is the agent directory (HostDir) as the test, in the root namespace, sees it.
	Dir string

	mu     sync.Mutex
	pid    int
	paused bool
}

// NewHostAgent prepares member name's agent in host h, running bin, without starting it.
func NewHostAgent(tb testing.TB, h *lab.Host, name, bin string) *HostAgent {
	tb.Helper()
	dir, ok := h.Path(HostDir)
	if !ok {
		tb.Fatalf("%s: %s is not a private directory of the host", h.Name, HostDir)
	}
	a := &HostAgent{tb: tb, Host: h, Name: name, Bin: bin, Dir: dir}
	tb.Cleanup(func() {
		a.Resume()
		a.Kill()
		if tb.Failed() {
			a.dumpLog()
		}
	})
	return a
}

// StartInHost starts member name's agent (the binary under test, short raft timings) in
// host h and waits until its socket answers.
func StartInHost(tb testing.TB, h *lab.Host, name string) *HostAgent {
	tb.Helper()
	a := NewHostAgent(tb, h, name, Bin())
	a.Start()
	return a
}

// Socket is the root namespace's path of the agent's unix socket.
func (a *HostAgent) Socket() string { return filepath.Join(a.Dir, "unix.socket") }

// Local is a new API client of the agent's unix socket; the caller closes it.
func (a *HostAgent) Local() *api.Client { return api.NewUnixClient(a.Socket()) }

// Start is TryStart that fails the test on an error.
func (a *HostAgent) Start(args ...string) {
	a.tb.Helper()
	if err := a.TryStart(args...); err != nil {
		a.tb.Fatal(err)
	}
}

// TryStart launches the daemon with the extra daemon flags args and waits until its socket
// answers; the error wraps ErrExited when the daemon exited first.
func (a *HostAgent) TryStart(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if old := a.PID(); old != 0 && !Exited(old) {
		return fmt.Errorf("%s: not starting another agent: pid %d is still running", a.Name, old)
	}
	pid, err := a.launch(ctx, args)
	if err != nil {
		return err
	}
	cl := a.Local()
	defer cl.Close()
	err = wait.Until(30*time.Second, func() error {
		if Exited(pid) {
			return wait.Stop(fmt.Errorf("%s: pid %d: %w", a.Name, pid, ErrExited))
		}
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		_, _, err := cl.Server(cctx)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrExited) {
			a.mu.Lock()
			a.pid = 0
			a.mu.Unlock()
		}
		return fmt.Errorf("%s: waiting for the agent to answer on its socket: %w", a.Name, err)
	}
	return nil
}

// launch starts the daemon in its own session inside the host and records its PID.
func (a *HostAgent) launch(ctx context.Context, extra []string) (int, error) {
	args := []string{a.Bin, "daemon", "--dir", HostDir}
	if !a.DefaultRaft {
		args = append(args, "--raft-heartbeat", RaftTiming, "--raft-election", RaftTiming, "--raft-leader-lease", RaftTiming)
	}
	args = append(args, extra...)
	log := shell.Quote(HostDir + "/daemon.log")
	script := fmt.Sprintf("mkdir -p %s && setsid %s >>%s 2>&1 </dev/null & echo $!", shell.Quote(HostDir), shell.Join(args...), log)
	out, err := a.Host.Exec(ctx, "sh", "-c", script)
	if err != nil {
		return 0, fmt.Errorf("%s: starting the agent: %w", a.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("%s: agent pid %q: %w", a.Name, out, err)
	}
	a.mu.Lock()
	a.pid, a.paused = pid, false
	a.mu.Unlock()
	return pid, nil
}

// KillTimeout bounds how long Kill waits for a SIGKILLed daemon to be gone. A killed
// process keeps its sockets until it has exited, and exiting can take seconds under load
// (its dirty pages, a loop device full of writes): its unix socket still accepts
// connections meanwhile, so a daemon started then finds "the daemon is running" and exits.
const KillTimeout = 2 * time.Minute

// ErrStillRunning is TryKill's error when the daemon outlived its timeout.
var ErrStillRunning = errors.New("still running after SIGKILL")

// Kill sends SIGKILL to the daemon (by PID) and waits until its process is gone; the test
// fails (without stopping: nemesis goroutines call it) when it outlives KillTimeout.
func (a *HostAgent) Kill() {
	if err := a.TryKill(KillTimeout); err != nil {
		a.tb.Error(err)
	}
}

// TryKill is Kill returning its error. The PID is forgotten only once the process is gone,
// so that a later kill (the test's cleanup) still finds it.
func (a *HostAgent) TryKill(timeout time.Duration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pid == 0 {
		return nil
	}
	_ = syscall.Kill(a.pid, syscall.SIGKILL)
	err := wait.UntilEvery(timeout, 10*time.Millisecond, func() error {
		if Exited(a.pid) {
			return nil
		}
		return fmt.Errorf("%s: agent pid %d: %w", a.Name, a.pid, ErrStillRunning)
	})
	if err != nil {
		return err
	}
	a.pid, a.paused = 0, false
	return nil
}

// Exited reports whether pid has exited (a zombie waits for its reaper, the host's init).
// Every thread counts: after SIGKILL the thread-group leader can be a zombie while another
// thread is still finishing a write to a full disk, and until that one is gone the process
// keeps its files and sockets open (its unix socket still answered, so the next daemon
// refused to start: "the daemon is running").
func Exited(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, task := range tasks {
		if !taskExited(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name())) {
			return false
		}
	}
	return true
}

// taskExited reports whether the task of a /proc stat file is a zombie or gone.
func taskExited(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// Pause sends SIGSTOP to the daemon; Resume sends SIGCONT.
func (a *HostAgent) Pause() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pid != 0 && !a.paused {
		_ = syscall.Kill(a.pid, syscall.SIGSTOP)
		a.paused = true
	}
}

// Resume sends SIGCONT to a paused daemon.
func (a *HostAgent) Resume() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pid != 0 && a.paused {
		_ = syscall.Kill(a.pid, syscall.SIGCONT)
		a.paused = false
	}
}

// Running reports whether the daemon was started and not killed since (paused or not).
func (a *HostAgent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pid != 0
}

// Up reports whether the daemon runs and is not paused.
func (a *HostAgent) Up() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pid != 0 && !a.paused
}

// PID is the daemon's process ID (0 when not running).
func (a *HostAgent) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pid
}

// Exec runs a command inside the agent's host (30s at the most) and returns its standard
// output; the error carries its standard error.
func (a *HostAgent) Exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := a.Host.Exec(ctx, args...)
	return string(out), err
}

// Run runs the agent's CLI from the root namespace against the agent's directory, with stdin.
func (a *HostAgent) Run(stdin string, args ...string) Result {
	a.tb.Helper()
	res, err := RunCLI(a.Bin, a.Dir, stdin, args...)
	if err != nil {
		a.tb.Fatalf("%s: %v", a.Name, err)
	}
	return res
}

// MustRun is Run that fails the test unless the CLI exits 0; it returns stdout.
func (a *HostAgent) MustRun(stdin string, args ...string) string {
	a.tb.Helper()
	return mustSucceed(a.tb, a.Name, a.Run(stdin, args...), args)
}

// dumpLog prints the tail of the daemon's log, each line prefixed with "[name] ".
func (a *HostAgent) dumpLog() {
	b, err := os.ReadFile(filepath.Join(a.Dir, "daemon.log"))
	if err != nil {
		a.tb.Logf("[%s] no log: %v", a.Name, err)
		return
	}
	a.tb.Logf("log of %s (%s on %s):\n%s", a.Name, HostDir, a.Host.Name, prefixTail(a.Name, b, logTail))
}
