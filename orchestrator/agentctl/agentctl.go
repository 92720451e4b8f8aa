// Package agentctl manages the nodeagent daemon's lifecycle on one host through an SSH
// connection: install the binary, start it (a systemd unit when systemd is PID 1,
// otherwise a detached process with a pidfile and a log file), report its status, stop,
// restart, wait until it answers, and run its CLI.
//
// It is the one place orch knows the agent directory's layout and the agent's command
// line: the start script, the systemd unit, `orch node`, the playbook modules and the
// upgrade all build them here (Binary, Command, Run, Cmd, ClusterCert). Layout under the
// agent directory D:
//
//	D/bin/nodeagent        the binary (mode 0755)
//	D/nodeagent.pid        PID of the detached daemon (not used under systemd)
//	D/logs/nodeagent.log   the daemon's stdout and stderr, appended (without systemd; a
//	                       systemd unit logs to the journal: journalctl -u nodeagent@...)
//	D/unix.socket          the daemon's local API
//	D/cluster.crt          the cluster certificate (once the agent is a member)
//
// The agent's command line is `D/bin/nodeagent --dir D ARGS…`; the daemon runs as
// `D/bin/nodeagent daemon --dir D` (the systemd unit's ExecStart, unchanged since units were
// first installed).
//
// Every operation is one remote shell script (one SSH session) and is idempotent.
// Commands run as root when the connection's Config.Become is set.
package agentctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"orch/internal/shell"
	"orch/nodeagent/api"
	"orch/orchestrator/transport"
)

// Sentinel errors.
var (
	// ErrNotInstalled means AGENT_DIR/bin/nodeagent is missing or not executable.
	ErrNotInstalled = errors.New("agent not installed")
	// ErrStart means the daemon could not be started.
	ErrStart = errors.New("agent failed to start")
	// ErrNotReady means the daemon did not answer on its socket in time.
	ErrNotReady = errors.New("agent not ready")
)

// Remote is what agentctl needs from a connection; *transport.Conn implements it.
type Remote interface {
	// Name is the host's name, used to start errors.
	Name() string
	// Run runs a shell command on the host.
	Run(ctx context.Context, cmd string, opts transport.RunOptions) (transport.Result, error)
	// Push copies a local file to the host atomically.
	Push(ctx context.Context, local, remote string, mode os.FileMode) (bool, error)
}

// Binary is the agent's binary path under agentDir.
func Binary(agentDir string) string { return path.Join(agentDir, "bin", "nodeagent") }

// LogFile is the detached daemon's log file under agentDir.
func LogFile(agentDir string) string { return path.Join(agentDir, "logs", "nodeagent.log") }

// PIDFile is the detached daemon's pidfile under agentDir.
func PIDFile(agentDir string) string { return path.Join(agentDir, "nodeagent.pid") }

// ClusterCert is the cluster certificate of the member in agentDir.
func ClusterCert(agentDir string) string { return path.Join(agentDir, "cluster.crt") }

// Command is the shell command that runs the agent's CLI in agentDir with args:
// `AGENT_DIR/bin/nodeagent --dir AGENT_DIR ARGS…`, every word quoted. --dir comes first so
// that no argument, not even one after a command that passes the rest through (exec), can
// take it for its own.
func Command(agentDir string, args ...string) string {
	return shell.Join(append([]string{Binary(agentDir), "--dir", agentDir}, args...)...)
}

// daemonArgv is the daemon's command line in agentDir, as the start script and the systemd
// unit (with agentDir "%f") run it.
func daemonArgv(agentDir string) []string {
	return []string{Binary(agentDir), "daemon", "--dir", agentDir}
}

// Install pushes localBinary to AGENT_DIR/bin/nodeagent (mode 0755). A running daemon
// keeps running the old binary until Restart.
func Install(ctx context.Context, conn Remote, localBinary, agentDir string) (changed bool, err error) {
	if err := checkDir(conn, agentDir); err != nil {
		return false, err
	}
	return conn.Push(ctx, localBinary, Binary(agentDir), 0o755)
}

// Start starts the daemon unless it already runs. Under systemd it installs and enables
// the unit nodeagent@<escaped dir>.service; otherwise it starts
// `AGENT_DIR/bin/nodeagent daemon --dir AGENT_DIR` detached (own session, stdin from
// /dev/null, output appended to the log file, PID in the pidfile). The SSH session
// returns at once and the daemon outlives it.
func Start(ctx context.Context, conn Remote, agentDir string) (changed bool, err error) {
	if err := checkDir(conn, agentDir); err != nil {
		return false, err
	}
	out, err := script(ctx, conn, agentDir, startScript(agentDir))
	if err != nil {
		return false, err
	}
	return strings.Contains(out, "orch-agent changed"), nil
}

// Status reports whether the daemon runs and its PID. A daemon whose binary was
// replaced since it started (its /proc/PID/exe reads "… (deleted)") still counts.
func Status(ctx context.Context, conn Remote, agentDir string) (running bool, pid int, err error) {
	if err := checkDir(conn, agentDir); err != nil {
		return false, 0, err
	}
	out, err := script(ctx, conn, agentDir, statusScript)
	if err != nil {
		return false, 0, err
	}
	if rest, ok := strings.CutPrefix(lastLine(out), "orch-agent running "); ok {
		pid, err = strconv.Atoi(rest)
		return err == nil, pid, err
	}
	return false, 0, nil
}

// Stop sends SIGTERM, waits up to grace for the daemon to exit, then SIGKILLs it.
// It reports whether a daemon was running.
func Stop(ctx context.Context, conn Remote, agentDir string, grace time.Duration) (changed bool, err error) {
	if err := checkDir(conn, agentDir); err != nil {
		return false, err
	}
	ticks := int((grace + stopTick - 1) / stopTick)
	out, err := script(ctx, conn, agentDir, strings.ReplaceAll(stopScript, "GRACE_TICKS", strconv.Itoa(ticks)))
	if err != nil {
		return false, err
	}
	return strings.Contains(out, "orch-agent changed"), nil
}

// stopTick is the polling interval of the remote stop loop (sleep 0.05).
const stopTick = 50 * time.Millisecond

// Restart stops the daemon (see Stop) and starts it again, for example after Install
// replaced the binary.
func Restart(ctx context.Context, conn Remote, agentDir string, grace time.Duration) error {
	if _, err := Stop(ctx, conn, agentDir, grace); err != nil {
		return err
	}
	_, err := Start(ctx, conn, agentDir)
	return err
}

// Started says what StartReady did.
type Started int

// What StartReady found or did.
const (
	// AlreadyRunning: the daemon ran and was left alone.
	AlreadyRunning Started = iota
	// StartedNow: no daemon ran; one was started and answers.
	StartedNow
	// Restarted: a running daemon was stopped, started again, and answers.
	Restarted
)

// StartReady is Start, preceded by Stop when restart is set, then, when it started a
// daemon, a wait until it answers ready: `orch up` of 200 hosts ran these as three commands
// per host (and three more shell and Go process starts) on a machine it keeps busy. Over a
// root login the wait asks the daemon through the SSH connection's forwarding of its socket
// (waitSocket: no process on the host); otherwise, or when sshd refuses to forward, the
// script runs `nodeagent waitready`. Its errors are those of Start, Stop and WaitReady
// (ErrNotInstalled, ErrStart, ErrNotReady with the log's last lines).
func StartReady(ctx context.Context, conn Remote, agentDir string, restart bool, grace, timeout time.Duration) (Started, error) {
	if err := checkDir(conn, agentDir); err != nil {
		return AlreadyRunning, err
	}
	ctx, cancel := context.WithTimeout(ctx, grace+timeout+30*time.Second)
	defer cancel()
	onSocket := canWaitOnSocket(conn)
	out, err := script(ctx, conn, agentDir, startReadyScript(agentDir, restart, grace, timeout, !onSocket))
	did := AlreadyRunning
	switch {
	case err != nil:
		return did, err
	case strings.Contains(out, "orch-agent restarted"):
		did = Restarted
	case strings.Contains(out, "orch-agent started"):
		did = StartedNow
	}
	if did == AlreadyRunning || !onSocket {
		return did, nil
	}
	switch err := waitSocket(ctx, conn, agentDir, timeout); {
	case errors.Is(err, errNoForwarding):
		return did, WaitReady(ctx, conn, agentDir, timeout)
	case err != nil:
		return did, notReady(ctx, conn, agentDir, timeout, err)
	}
	return did, nil
}

// startReadyScript is StartReady's script: stop (restart only), start, and (wait) waitready
// after a start; "orch-agent started" or "orch-agent restarted" last when it started a daemon.
func startReadyScript(agentDir string, restart bool, grace, timeout time.Duration, wait bool) string {
	var b strings.Builder
	b.WriteString("re=\n")
	if restart {
		ticks := int((grace + stopTick - 1) / stopTick)
		b.WriteString("out=$( (\n" + strings.ReplaceAll(stopScript, "GRACE_TICKS", strconv.Itoa(ticks)) + ") ) || exit $?\n")
		b.WriteString(`case $out in *"orch-agent changed"*) re=re ;; esac` + "\n")
	}
	b.WriteString("out=$( (\n" + startScript(agentDir) + ") ) || exit $?\n")
	b.WriteString(`case $out in *"orch-agent changed"*) ;; *) echo "orch-agent running"; exit 0 ;; esac` + "\n")
	if wait {
		secs := int((timeout + time.Second - 1) / time.Second)
		b.WriteString(Command(agentDir, "waitready", "--timeout", strconv.Itoa(secs)) + " || { rc=$?; " + logTail(agentDir) + "; exit " + strconv.Itoa(exitNotReady) + "; }\n")
	}
	b.WriteString(`echo "orch-agent ${re}started"` + "\n")
	return b.String()
}

// logTail is the shell command that copies the last lines of the agent's log (the
// journal's under systemd) to stderr.
func logTail(agentDir string) string {
	return `echo "--- last lines of the agent's log ---" >&2; ` +
		`{ journalctl -q -u ` + shell.Quote(UnitName(agentDir)) + ` -n 20 --no-pager -o cat 2>/dev/null | grep . ||` +
		` tail -n 20 ` + shell.Quote(LogFile(agentDir)) + `; } >&2 2>/dev/null`
}

// WaitReady runs `nodeagent waitready --dir AGENT_DIR --timeout SECONDS` remotely. On
// failure the error includes the end of the daemon's log.
func WaitReady(ctx context.Context, conn Remote, agentDir string, timeout time.Duration) error {
	if err := checkDir(conn, agentDir); err != nil {
		return err
	}
	secs := int((timeout + time.Second - 1) / time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	cmd := Command(agentDir, "waitready", "--timeout", strconv.Itoa(secs)) +
		` || { rc=$?; ` + logTail(agentDir) + `; exit $rc; }`
	res, err := conn.Run(ctx, cmd, transport.RunOptions{})
	if err != nil {
		return fmt.Errorf("%s: waiting for the agent: %w", conn.Name(), stripHost(err, conn.Name()))
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("%s: %w after %v (exit %d): %s", conn.Name(), ErrNotReady, timeout, res.ExitCode,
			strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

// Cmd runs the agent's CLI remotely (Command) with opts: stdin, streamed output, become. A
// non-zero exit is a Result, not an error.
func Cmd(ctx context.Context, conn Remote, agentDir string, opts transport.RunOptions, args ...string) (transport.Result, error) {
	if err := checkDir(conn, agentDir); err != nil {
		return transport.Result{}, err
	}
	return conn.Run(ctx, Command(agentDir, args...), opts)
}

// Run runs the agent's CLI remotely, feeding stdin, and returns its stdout. A non-zero exit
// is an error carrying the agent's message (never stdin, which may hold a secret), named
// by the command (args[0]).
func Run(ctx context.Context, conn Remote, agentDir string, stdin []byte, args ...string) ([]byte, error) {
	var opts transport.RunOptions
	if stdin != nil {
		opts.Stdin = bytes.NewReader(stdin)
	}
	res, err := Cmd(ctx, conn, agentDir, opts, args...)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		msg := strings.TrimPrefix(strings.TrimSpace(string(res.Stderr)), "Error: ")
		return res.Stdout, fmt.Errorf("nodeagent %s: %s", args[0], msg)
	}
	return res.Stdout, nil
}

// checkDir rejects agent directories the scripts cannot handle.
func checkDir(conn Remote, agentDir string) error {
	if !path.IsAbs(agentDir) || path.Clean(agentDir) == "/" {
		return fmt.Errorf("%s: agent directory %q must be an absolute path other than /", conn.Name(), agentDir)
	}
	return nil
}

// script runs a lifecycle script and returns its stdout, turning a non-zero exit into
// an error carrying its stderr.
func script(ctx context.Context, conn Remote, agentDir, body string) (string, error) {
	res, err := conn.Run(ctx, prelude(agentDir)+body, transport.RunOptions{})
	if err != nil {
		return "", err
	}
	msg := strings.TrimSpace(string(res.Stderr))
	switch res.ExitCode {
	case 0:
		return string(res.Stdout), nil
	case exitNotInstalled:
		return "", fmt.Errorf("%s: %w: %s", conn.Name(), ErrNotInstalled, msg)
	case exitStart:
		return "", fmt.Errorf("%s: %w: %s", conn.Name(), ErrStart, msg)
	case exitNotReady:
		return "", fmt.Errorf("%s: %w: %s", conn.Name(), ErrNotReady, msg)
	default:
		return "", fmt.Errorf("%s: agent script failed (exit %d): %s", conn.Name(), res.ExitCode, msg)
	}
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// stripHost drops a leading "host: " from err's message, keeping it for errors.Is.
func stripHost(err error, host string) error {
	msg, ok := strings.CutPrefix(err.Error(), host+": ")
	if !ok {
		return err
	}
	return &trimmed{msg: msg, err: err}
}

// trimmed shows a shorter message but unwraps to the original error.
type trimmed struct {
	msg string
	err error
}

func (e *trimmed) Error() string { return e.msg }
func (e *trimmed) Unwrap() error { return e.err }

// dialer is a host connection that can open a stream to a unix socket on the host
// (transport.Conn: the SSH connection's streamlocal forwarding, as `ssh -L` does).
type dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Local calls fn with a client of the agent's local API, reached through conn's forwarding
// of the daemon's unix socket: no process starts on the host, where running the agent CLI
// for the same request started a shell and the CLI (~10 ms of CPU each; `orch up` of 200
// hosts asked 400 times). It reports false, without calling fn, when the socket cannot be
// reached that way (sshd refuses forwarding, a login user who may not open the root-only
// socket, no daemon): the caller then runs the CLI, which says why.
func Local(ctx context.Context, conn Remote, agentDir string, fn func(*api.Client) error) (bool, error) {
	done, _, err := local(ctx, conn, agentDir, fn)
	return done, err
}

// local is Local that also returns why the socket could not be reached (dialErr).
func local(ctx context.Context, conn Remote, agentDir string, fn func(*api.Client) error) (done bool, dialErr, err error) {
	d, ok := conn.(dialer)
	if !ok {
		return false, errors.ErrUnsupported, nil
	}
	sock := api.SocketPath(agentDir)
	first, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return false, err, nil
	}
	var once sync.Once
	cl := api.NewDialClient(func(ctx context.Context) (net.Conn, error) {
		var nc net.Conn
		once.Do(func() { nc, first = first, nil })
		if nc != nil {
			return nc, nil
		}
		return d.DialContext(ctx, "unix", sock)
	})
	defer func() {
		cl.Close()
		once.Do(func() { first.Close() }) // never used
	}()
	return true, nil, fn(cl)
}

// socketWaiter is a connection that logs in as root: the daemon's socket is root-only, so
// only then can its forwarding reach it (transport.Conn).
type socketWaiter interface {
	dialer
	Config() transport.Config
}

// canWaitOnSocket reports whether waitSocket may wait for the daemon through conn.
func canWaitOnSocket(conn Remote) bool {
	w, ok := conn.(socketWaiter)
	return ok && w.Config().User == "root"
}

// errNoForwarding means sshd refuses to forward the daemon's socket: wait with the CLI.
var errNoForwarding = errors.New("the SSH server does not forward unix sockets")

// waitSocket is WaitReady without the CLI: it asks the daemon through the SSH connection's
// forwarding of its socket (agentctl.Local) until it answers ready, as `nodeagent
// waitready` does on the host, which costs a process there. It returns errNoForwarding at
// once when sshd refuses the forwarding.
func waitSocket(ctx context.Context, conn Remote, agentDir string, timeout time.Duration) error {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		done, dialErr, err := local(ctx, conn, agentDir, func(cl *api.Client) error {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			s, _, err := cl.Server(rctx)
			if err != nil {
				return err
			}
			return s.Environment.Ready()
		})
		var oce *ssh.OpenChannelError
		switch {
		case done && err == nil:
			return nil
		case !done && errors.As(dialErr, &oce) && oce.Reason == ssh.Prohibited:
			return errNoForwarding
		case !done:
			err = dialErr
		}
		if time.Now().After(deadline) {
			return err
		}
		pause := socketPoll
		if time.Since(start) > socketPollFast {
			pause = socketPollSlow
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// waitSocket asks every socketPoll for socketPollFast, then every socketPollSlow. A fresh
// daemon answers 15-60 ms after its start (100-300 ms when 30 start at once on 2 cores):
// it is seen within 10 ms of being ready (at 25 ms, 12 ms later on average: `orch up`
// waited for it on its critical path), and a failed ask costs a refused forwarding (no
// process on the host; ~0.1 ms of sshd's and orch's CPU: 5 ms pauses cost 30 hosts
// ~100 ms of CPU in asks).
const (
	socketPoll     = 10 * time.Millisecond
	socketPollFast = 500 * time.Millisecond
	socketPollSlow = 25 * time.Millisecond
)

// notReady is WaitReady's error after waitSocket gave up: the last answer and the end of the
// agent's log.
func notReady(ctx context.Context, conn Remote, agentDir string, timeout time.Duration, last error) error {
	res, _ := conn.Run(ctx, logTail(agentDir)+"; true", transport.RunOptions{})
	return fmt.Errorf("%s: %w after %v: %v\n%s", conn.Name(), ErrNotReady, timeout, last, strings.TrimSpace(string(res.Stderr)))
}
