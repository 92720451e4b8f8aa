package agentctl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"orch/nodeagent/api"
	"orch/orchestrator/transport"
	"orch/orchestrator/transport/sshdtest"
)

// host is an sshd plus how to reach it.
type host struct {
	srv *sshdtest.Server
	cfg transport.Config
}

// startHost starts an sshd that the returned Config (root, or the current user) reaches.
func startHost(t *testing.T) *host {
	t.Helper()
	key := sshdtest.NewUserKey(t)
	srv := sshdtest.Start(t, sshdtest.Options{AuthorizedKeys: []ssh.PublicKey{key.Public}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	sshdtest.WriteKnownHosts(t, kh, srv.KnownHostsLine("ed25519"))
	user := os.Getenv("USER")
	if os.Geteuid() == 0 {
		user = "root"
	}
	return &host{srv: srv, cfg: transport.Config{Name: "node-" + srv.IP, Host: srv.IP, Port: srv.Port, User: user,
		KeyFiles: []string{key.Path}, AgentSocket: transport.AgentNone, KnownHostsFile: kh}}
}

// connect dials cfg, closing the connection at cleanup.
func connect(t *testing.T, cfg transport.Config) *transport.Conn {
	t.Helper()
	c, err := transport.Dial(ctx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ctx is a test context with a deadline.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// agentDir makes an agent directory the remote side (this machine) can use, and makes
// sure no daemon started in it outlives the test.
func agentDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "agentctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(PIDFile(d)); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && processRuns(pid, d) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		os.RemoveAll(d)
	})
	return d
}

// processRuns reports whether pid is a live process whose command line names dir's binary.
func processRuns(pid int, dir string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), Binary(dir))
}

// standIn writes the stand-in agent with a version tag into a temp file.
func standIn(t *testing.T, version string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/nodeagent-standin.sh")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "nodeagent")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "VERSION", version)), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// status returns the daemon's state, failing the test on error.
func status(t *testing.T, c Remote, dir string) (bool, int) {
	t.Helper()
	running, pid, err := Status(ctx(t), c, dir)
	if err != nil {
		t.Fatal(err)
	}
	return running, pid
}

func TestLifecycleWithStandIn(t *testing.T) {
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Start(ctx(t), c, "relative/dir"); err == nil || !strings.HasPrefix(err.Error(), c.Name()+": ") {
		t.Fatalf("relative agent dir: got %v", err)
	}
	if _, err := Start(ctx(t), c, dir); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("start before install: got %v, want ErrNotInstalled", err)
	}
	bin := standIn(t, "1")
	if changed, err := Install(ctx(t), c, bin, dir); err != nil || !changed {
		t.Fatalf("install: %v %v", changed, err)
	}
	if changed, err := Install(ctx(t), c, bin, dir); err != nil || changed {
		t.Fatalf("re-install: %v %v", changed, err)
	}
	if running, _ := status(t, c, dir); running {
		t.Fatal("running before start")
	}
	start := time.Now()
	if changed, err := Start(ctx(t), c, dir); err != nil || !changed {
		t.Fatalf("start: %v %v", changed, err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("start took %v: the session waited for the daemon", d)
	}
	if err := WaitReady(ctx(t), c, dir, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	running, pid := status(t, c, dir)
	if !running || pid <= 0 {
		t.Fatalf("status after start: %v %d", running, pid)
	}
	if changed, err := Start(ctx(t), c, dir); err != nil || changed {
		t.Fatalf("second start: %v %v", changed, err)
	}

	// The daemon survives the SSH connection and its server-side processes.
	c.Close()
	c2 := connect(t, h.cfg)
	if running, pid2 := status(t, c2, dir); !running || pid2 != pid {
		t.Fatalf("after reconnect: running=%v pid=%d, want pid %d", running, pid2, pid)
	}
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Fatalf("daemon session id %d, want its own session %d", sid, pid)
	}

	if changed, err := Stop(ctx(t), c2, dir, 5*time.Second); err != nil || !changed {
		t.Fatalf("stop: %v %v", changed, err)
	}
	if running, _ := status(t, c2, dir); running {
		t.Fatal("running after stop")
	}
	if changed, err := Stop(ctx(t), c2, dir, 5*time.Second); err != nil || changed {
		t.Fatalf("second stop: %v %v", changed, err)
	}
	log, _ := os.ReadFile(LogFile(dir))
	if !strings.Contains(string(log), "starting") || !strings.Contains(string(log), "stopping") {
		t.Fatalf("log file lacks the daemon's output:\n%s", log)
	}
}

func TestRestartAfterBinaryReplace(t *testing.T) {
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Install(ctx(t), c, standIn(t, "1"), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(ctx(t), c, dir); err != nil {
		t.Fatal(err)
	}
	_, pid := status(t, c, dir)
	if changed, err := Install(ctx(t), c, standIn(t, "2"), dir); err != nil || !changed {
		t.Fatalf("install v2: %v %v", changed, err)
	}
	if running, pid2 := status(t, c, dir); !running || pid2 != pid {
		t.Fatalf("old daemon after binary replace: running=%v pid=%d, want %d", running, pid2, pid)
	}
	if changed, _ := Start(ctx(t), c, dir); changed {
		t.Fatal("start with the old daemon running: changed=true")
	}
	if err := Restart(ctx(t), c, dir, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	running, pid3 := status(t, c, dir)
	if !running || pid3 == pid {
		t.Fatalf("after restart: running=%v pid=%d (old %d)", running, pid3, pid)
	}
	if err := WaitReady(ctx(t), c, dir, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if log, _ := os.ReadFile(LogFile(dir)); !strings.Contains(string(log), "version 2") {
		t.Fatalf("restarted daemon is not version 2:\n%s", log)
	}
	Stop(ctx(t), c, dir, 5*time.Second)
}

func TestStopKillsAfterGrace(t *testing.T) {
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Install(ctx(t), c, standIn(t, "1"), dir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ignore-term"), nil, 0o644)
	if _, err := Start(ctx(t), c, dir); err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ctx(t), c, dir, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if changed, err := Stop(ctx(t), c, dir, 300*time.Millisecond); err != nil || !changed {
		t.Fatalf("stop: %v %v", changed, err)
	}
	if running, _ := status(t, c, dir); running {
		t.Fatal("daemon ignoring SIGTERM still runs after stop")
	}
}

func TestStalePIDFileIsNotRunning(t *testing.T) {
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Install(ctx(t), c, standIn(t, "1"), dir); err != nil {
		t.Fatal(err)
	}
	// A live process that is not the agent (this test) under the pidfile.
	os.WriteFile(PIDFile(dir), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if running, _ := status(t, c, dir); running {
		t.Fatal("unrelated process taken for the agent")
	}
	if changed, err := Start(ctx(t), c, dir); err != nil || !changed {
		t.Fatalf("start over a stale pidfile: %v %v", changed, err)
	}
	Stop(ctx(t), c, dir, 5*time.Second)
}

// A launcher that cannot write the pidfile fails the start at once with ErrStart: the
// script waits for the launcher's answer, where it polled for the pidfile for 10 s.
func TestStartFailsAtOnceWithoutPIDFile(t *testing.T) {
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Install(ctx(t), c, standIn(t, "1"), dir); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(PIDFile(dir)+".tmp", 0o755) // the launcher's `echo $$ > PIDFILE.tmp` fails
	quick, cancel := context.WithTimeout(ctx(t), 5*time.Second)
	defer cancel()
	if _, err := Start(quick, c, dir); !errors.Is(err, ErrStart) {
		t.Fatalf("got %v, want ErrStart", err)
	}
}

func TestWaitReadyFailureShowsLog(t *testing.T) {
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Install(ctx(t), c, standIn(t, "1"), dir); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	os.WriteFile(LogFile(dir), []byte("boom: config broken\n"), 0o644)
	err := WaitReady(ctx(t), c, dir, time.Second)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "boom: config broken") ||
		!strings.HasPrefix(err.Error(), c.Name()+": ") {
		t.Fatalf("got %v, want ErrNotReady with the log tail", err)
	}
}

func TestCmdQuotesArguments(t *testing.T) {
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Install(ctx(t), c, standIn(t, "1"), dir); err != nil {
		t.Fatal(err)
	}
	res, err := Cmd(ctx(t), c, dir, transport.RunOptions{}, "cluster", "it's $HOME", "--", "x y")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("cmd: %v %+v", err, res)
	}
	want := "cmd=cluster dir=" + dir + " args=[it's $HOME][--][x y]\n"
	if string(res.Stdout) != want {
		t.Fatalf("got %q, want %q", res.Stdout, want)
	}
}

func TestBecomeIntoRootOwnedDir(t *testing.T) {
	sshdtest.EnsureUser(t, "orchtest", true)
	h := startHost(t)
	cfg := h.cfg
	cfg.User, cfg.Become = "orchtest", true
	c := connect(t, cfg)
	dir := agentDir(t)
	os.Chmod(dir, 0o700) // root only
	if _, err := Install(ctx(t), c, standIn(t, "1"), dir); err != nil {
		t.Fatal(err)
	}
	if changed, err := Start(ctx(t), c, dir); err != nil || !changed {
		t.Fatalf("start: %v %v", changed, err)
	}
	if err := WaitReady(ctx(t), c, dir, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	running, pid := status(t, c, dir)
	if st, err := os.Stat("/proc/" + strconv.Itoa(pid)); !running || err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("daemon not running as root: running=%v pid=%d", running, pid)
	}
	if changed, err := Stop(ctx(t), c, dir, 5*time.Second); err != nil || !changed {
		t.Fatalf("stop: %v %v", changed, err)
	}
}

// With the real nodeagent (make build), the same lifecycle.
func TestLifecycleWithRealAgent(t *testing.T) {
	bin, err := filepath.Abs("../../bin/nodeagent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skip("bin/nodeagent not built: run make build")
	}
	if out, _ := exec.Command(bin, "--help").CombinedOutput(); !strings.Contains(string(out), "waitready") {
		t.Skip("bin/nodeagent has no waitready command yet")
	}
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Install(ctx(t), c, bin, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(ctx(t), c, dir); err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ctx(t), c, dir, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	_, pid := status(t, c, dir)
	// Replacing the binary leaves /proc/PID/exe "(deleted)": still our running agent.
	tmp := filepath.Join(t.TempDir(), "nodeagent")
	b, _ := os.ReadFile(bin)
	os.WriteFile(tmp, append(b, 0), 0o755)
	if _, err := Install(ctx(t), c, tmp, dir); err != nil {
		t.Fatal(err)
	}
	if running, pid2 := status(t, c, dir); !running || pid2 != pid {
		t.Fatalf("after binary replace: running=%v pid=%d, want %d", running, pid2, pid)
	}
	if err := Restart(ctx(t), c, dir, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ctx(t), c, dir, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := Stop(ctx(t), c, dir, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestUnitNameAndText(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/nodeagent":  `nodeagent@var-lib-nodeagent.service`,
		"/srv/agent-2/":       `nodeagent@srv-agent\x2d2.service`,
		"/srv/.hidden dir//x": `nodeagent@srv-.hidden\x20dir-x.service`,
		"/.x":                 `nodeagent@\x2ex.service`,
	} {
		if got := UnitName(in); got != want {
			t.Errorf("UnitName(%q) = %q, want %q", in, got, want)
		}
	}
	if out, err := exec.Command("systemd-escape", "--path", "/srv/agent-2/").Output(); err == nil &&
		"nodeagent@"+strings.TrimSpace(string(out))+".service" != UnitName("/srv/agent-2/") {
		t.Errorf("differs from systemd-escape: %q", out)
	}
	if !strings.Contains(unitText(), `ExecStart="%f/bin/nodeagent" daemon --dir "%f"`) {
		t.Error("unit does not run the daemon from the instance's directory")
	}
}

// TestCommand: --dir comes first, so that a command passing the rest of its arguments
// through (exec c1 ls -la) does not take it for its own.
func TestCommand(t *testing.T) {
	if got := Command("/d", "exec", "c1", "ls", "--dir", "x y"); got != "/d/bin/nodeagent --dir /d exec c1 ls --dir 'x y'" {
		t.Fatalf("got %q", got)
	}
	if got := systemdWords(daemonArgv("%f")); got != `"%f/bin/nodeagent" daemon --dir "%f"` {
		t.Fatalf("ExecStart %q", got)
	}
}

// plainRemote hides a connection's socket forwarding: StartReady then waits with the CLI.
type plainRemote struct{ Remote }

// StartReady starts, waits, leaves a running daemon alone, restarts one on request (a new
// process), and reports an agent that never answers as ErrNotReady with its log's tail, in
// one remote command each; here through a connection whose forwarding it cannot use, so
// the script waits with the (stand-in's) CLI.
func TestStartReady(t *testing.T) {
	h := startHost(t)
	c := plainRemote{connect(t, h.cfg)}
	dir := agentDir(t)
	if _, err := StartReady(ctx(t), c, dir, false, time.Second, 5*time.Second); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("before install: got %v, want ErrNotInstalled", err)
	}
	if _, err := Install(ctx(t), c, standIn(t, "1"), dir); err != nil {
		t.Fatal(err)
	}
	if did, err := StartReady(ctx(t), c, dir, true, time.Second, 10*time.Second); err != nil || did != StartedNow {
		t.Fatalf("first start (restart asked, nothing running): %v %v, want StartedNow", did, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "unix.socket")); err != nil {
		t.Fatalf("StartReady returned before the daemon was ready: %v", err)
	}
	_, pid := status(t, c, dir)
	if did, err := StartReady(ctx(t), c, dir, false, time.Second, 10*time.Second); err != nil || did != AlreadyRunning {
		t.Fatalf("second start: %v %v, want AlreadyRunning", did, err)
	}
	if _, again := status(t, c, dir); again != pid {
		t.Fatalf("a running daemon was replaced: pid %d, then %d", pid, again)
	}
	if did, err := StartReady(ctx(t), c, dir, true, 5*time.Second, 10*time.Second); err != nil || did != Restarted {
		t.Fatalf("restart: %v %v, want Restarted", did, err)
	}
	if running, again := status(t, c, dir); !running || again == pid {
		t.Fatalf("after restart: running=%v pid %d (was %d)", running, again, pid)
	}
	Stop(ctx(t), c, dir, 5*time.Second)
	neverReady(t, c, dir)
}

// neverReady: a daemon that never answers is ErrNotReady with its log's last lines.
func neverReady(t *testing.T, c Remote, dir string) {
	t.Helper()
	if err := os.WriteFile(Binary(dir), []byte("#!/bin/sh\ncase \"$*\" in *daemon*) echo 'boom: config broken'; exec sleep 30 ;; *waitready*) exit 1 ;; esac\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartReady(ctx(t), c, dir, false, time.Second, time.Second)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "boom: config broken") || !strings.HasPrefix(err.Error(), c.Name()+": ") {
		t.Fatalf("got %v, want ErrNotReady with the log tail", err)
	}
	Stop(ctx(t), c, dir, time.Second)
}

// Over a root login StartReady waits through the SSH connection's forwarding of the real
// agent's socket, with no waitready process on the host, and still reports a daemon that
// never answers.
func TestStartReadyOnSocket(t *testing.T) {
	agent, err := filepath.Abs("../../bin/nodeagent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(agent); err != nil {
		t.Skip("bin/nodeagent not built: run make build")
	}
	h := startHost(t)
	if h.cfg.User != "root" {
		t.Skip("the agent's socket is root-only: run as root")
	}
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if _, err := Install(ctx(t), c, agent, dir); err != nil {
		t.Fatal(err)
	}
	if got := startReadyScript(dir, false, time.Second, time.Second, false); strings.Contains(got, "waitready") {
		t.Fatalf("the script waits with the CLI:\n%s", got)
	}
	t.Cleanup(func() { Stop(context.Background(), c, dir, 5*time.Second) })
	if did, err := StartReady(ctx(t), c, dir, false, time.Second, 20*time.Second); err != nil || did != StartedNow {
		t.Fatalf("start: %v %v, want StartedNow", did, err)
	}
	var env api.Environment
	if done, err := Local(ctx(t), c, dir, func(cl *api.Client) error {
		s, _, err := cl.Server(ctx(t))
		env = s.Environment
		return err
	}); !done || err != nil || env.Ready() != nil {
		t.Fatalf("after StartReady: done=%v err=%v ready=%v", done, err, env.Ready())
	}
	Stop(ctx(t), c, dir, 5*time.Second)
	neverReady(t, c, dir)
}

// Local reaches the daemon's socket through the SSH connection (a unix socket answering
// GET /1.0 here), for as many requests as fn makes, and reports false when nothing listens,
// so that the caller runs the CLI instead.
func TestLocalThroughSocketForwarding(t *testing.T) {
	h := startHost(t)
	c := connect(t, h.cfg)
	dir := agentDir(t)
	if done, err := Local(ctx(t), c, dir, func(*api.Client) error { t.Error("fn called without a socket"); return nil }); done || err != nil {
		t.Fatalf("no socket: done=%v err=%v, want false", done, err)
	}
	ln, err := net.Listen("unix", api.SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"type":"sync","status":"Success","status_code":200,"metadata":{"environment":{"server_name":"m1"}}}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	done, err := Local(ctx(t), c, dir, func(cl *api.Client) error {
		for range 3 {
			s, _, err := cl.Server(ctx(t))
			if err != nil {
				return err
			}
			if s.Environment.ServerName != "m1" {
				t.Errorf("server name %q", s.Environment.ServerName)
			}
		}
		return nil
	})
	if !done || err != nil || calls.Load() != 3 {
		t.Fatalf("done=%v err=%v calls=%d, want 3 requests answered", done, err, calls.Load())
	}
}
