// Package sshdtest starts real OpenSSH sshd processes for tests: each on its own
// 127.0.0.x address and free port, with its own host keys, authorized keys and log, and
// killed (with its connection handlers) in t.Cleanup. It also makes client keys,
// known_hosts files and test users.
package sshdtest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
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
	"golang.org/x/crypto/ssh/knownhosts"
)

// Server is one running sshd.
type Server struct {
	// IP is the loopback address it listens on.
	IP string
	// Port is its TCP port.
	Port int
	// Dir holds its configuration, keys and log.
	Dir string
	// HostKeys are its public host keys by type name ("ed25519", "ecdsa", "rsa").
	HostKeys map[string]ssh.PublicKey

	cmd     *exec.Cmd
	logPath string
	stopped atomic.Bool
}

// Options configure Start.
type Options struct {
	// IP to listen on. Default: NextIP().
	IP string
	// HostKeyTypes to generate, among "ed25519", "ecdsa" and "rsa". Default: ed25519.
	HostKeyTypes []string
	// AuthorizedKeys may log in as any user.
	AuthorizedKeys []ssh.PublicKey
	// Config are extra sshd_config lines; they take precedence over the fixture's.
	Config []string
}

// ipCounter hands out 127.0.0.x addresses; base varies per process so that parallel test
// binaries tend to use different addresses (the free port makes clashes harmless anyway).
var ipCounter atomic.Int64

// NextIP returns the next address in 127.0.0.2–127.0.0.254.
func NextIP() string {
	n := ipCounter.Add(1) + int64(os.Getpid())
	return "127.0.0." + strconv.FormatInt(2+n%253, 10)
}

// SSHD returns the sshd binary's path, skipping the test when it is missing.
func SSHD(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	t.Skip("sshd not found: install openssh-server (apt-get install openssh-server)")
	return ""
}

// Start runs an sshd and waits until it answers with an SSH banner.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	sshd := SSHD(t)
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshd privilege separation dir: %v", err)
		}
	}
	if o.IP == "" {
		o.IP = NextIP()
	}
	if len(o.HostKeyTypes) == 0 {
		o.HostKeyTypes = []string{"ed25519"}
	}
	s := &Server{IP: o.IP, Dir: publicTempDir(t), HostKeys: map[string]ssh.PublicKey{}}
	s.logPath = filepath.Join(s.Dir, "sshd.log")
	s.writeKeys(t, o)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if lastErr = s.start(t, sshd, o); lastErr == nil {
			return s
		}
	}
	t.Fatalf("starting sshd on %s: %v\n%s", s.IP, lastErr, s.Log())
	return nil
}

// start picks a free port, launches sshd and waits for its banner.
func (s *Server) start(t testing.TB, sshd string, o Options) error {
	port, err := freePort(s.IP)
	if err != nil {
		return err
	}
	s.Port = port
	cfgPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(s.config(o)), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(sshd, "-D", "-e", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.cmd = cmd
	if err := waitBanner(s.Addr(), exited); err != nil {
		s.kill()
		return err
	}
	t.Cleanup(func() {
		s.Stop()
		<-exited
		if t.Failed() {
			t.Logf("sshd %s log:\n%s", s.Addr(), s.Log())
		}
	})
	return nil
}

// config renders sshd_config.
func (s *Server) config(o Options) string {
	var b strings.Builder
	for _, l := range o.Config { // sshd keeps the first value of a keyword
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "ListenAddress %s\n", s.Addr())
	for _, kt := range o.HostKeyTypes {
		fmt.Fprintf(&b, "HostKey %s\n", filepath.Join(s.Dir, "host_"+kt))
	}
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.Dir, "authorized_keys"))
	fmt.Fprintf(&b, "Subsystem sftp %s\n", sftpServer())
	b.WriteString(`PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding yes
PrintMotd no
LogLevel VERBOSE
MaxStartups 200
`)
	return b.String()
}

// Addr is "ip:port".
func (s *Server) Addr() string { return net.JoinHostPort(s.IP, strconv.Itoa(s.Port)) }

// Stop kills sshd and every connection it serves (its process group). Idempotent.
func (s *Server) Stop() {
	if s.stopped.CompareAndSwap(false, true) {
		s.kill()
	}
}

// Pause stops (SIGSTOP) sshd and every process it started, as if the host hung or the
// network dropped packets; Resume continues them. Resume runs at cleanup too.
func (s *Server) Pause(t testing.TB) {
	s.signalTree(syscall.SIGSTOP)
	t.Cleanup(s.Resume)
}

// Resume continues a paused sshd.
func (s *Server) Resume() { s.signalTree(syscall.SIGCONT) }

// signalTree signals sshd and its descendants.
func (s *Server) signalTree(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil || s.stopped.Load() {
		return
	}
	for _, pid := range append([]int{s.cmd.Process.Pid}, descendants(s.cmd.Process.Pid)...) {
		syscall.Kill(pid, sig)
	}
}

// kill sends SIGKILL to sshd and to every descendant (connection handlers run in their
// own sessions, so the process group is not enough).
func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pids := descendants(s.cmd.Process.Pid)
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Connections is how many client connections sshd serves now: its direct children (each
// connection is one forked sshd process, from the TCP accept to the disconnect).
func (s *Server) Connections() int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if p, err := strconv.Atoi(e.Name()); err == nil && parentPID(p) == s.cmd.Process.Pid {
			n++
		}
	}
	return n
}

// KillConnections kills (SIGKILL) the processes serving client connections, as a host
// that reboots or drops its network does; sshd itself goes on accepting.
func (s *Server) KillConnections() {
	for _, pid := range descendants(s.cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := parentPID(p); pp > 0 {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// CPUTime is the CPU time (user+system) used so far by sshd and everything it started:
// live processes' own time plus the time of reaped children. Benchmarks compare it
// before and after to charge the server side of a transfer.
func (s *Server) CPUTime() time.Duration {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	var ticks int64
	for _, pid := range append([]int{s.cmd.Process.Pid}, descendants(s.cmd.Process.Pid)...) {
		f := statFields(pid)
		if len(f) < 15 {
			continue
		}
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// statFields returns the fields of /proc/PID/stat after the command name, so that
// index 0 is the state (field 3 of proc(5)).
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// parentPID reads the PPid of pid from /proc/PID/stat (0 when unknown).
func parentPID(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp
}

// Log returns sshd's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// KnownHostsLine is the known_hosts line for the host key of type keyType.
func (s *Server) KnownHostsLine(keyType string) string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, s.HostKeys[keyType])
}

// writeKeys generates host keys and writes authorized_keys.
func (s *Server) writeKeys(t testing.TB, o Options) {
	t.Helper()
	for _, kt := range o.HostKeyTypes {
		pub, pemBytes := generateKey(t, kt, "")
		s.HostKeys[kt] = pub
		if err := os.WriteFile(filepath.Join(s.Dir, "host_"+kt), pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var ak strings.Builder
	for _, k := range o.AuthorizedKeys {
		ak.Write(ssh.MarshalAuthorizedKey(k))
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "authorized_keys"), []byte(ak.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitBanner waits until addr answers with an SSH banner or sshd exits.
func waitBanner(addr string, exited <-chan error) error {
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("sshd exited: %v", err)
		default:
		}
		if lastErr = readBanner(addr); lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no SSH banner on %s within 15s: %v", addr, lastErr)
}

// readBanner connects and reads the server's identification line.
func readBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}

// freePort asks the kernel for a free TCP port on ip.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sftpServer finds OpenSSH's sftp-server, falling back to the built-in one.
func sftpServer() string {
	for _, p := range []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
		"/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "internal-sftp"
}

// publicTempDir makes a world-traversable temporary directory (sshd reads
// authorized_keys as the logging-in user), removed at cleanup.
func publicTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sshdtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// generateKey makes a key of type kt ("ed25519", "ecdsa", "rsa") and returns its public
// half and OpenSSH PEM private half, encrypted when passphrase is set.
func generateKey(t testing.TB, kt, passphrase string) (ssh.PublicKey, []byte) {
	t.Helper()
	var priv any
	var err error
	switch kt {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		err = errors.New("unknown key type " + kt)
	}
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer.PublicKey(), pem.EncodeToMemory(block)
}
