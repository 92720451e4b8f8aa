package lab

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// requirements are the tools the lab drives, with the Debian package providing each.
var requirements = []struct{ tool, pkg string }{
	{"sshd", "openssh-server"},
	{"nsenter", "util-linux"},
	{"unshare", "util-linux"},
	{"mount", "mount"},
	{"useradd", "passwd"},
	{"sudo", "sudo"},
}

// missing says why a lab cannot run here, or "" if it can. Checked once per process.
var missing = sync.OnceValue(func() string {
	if os.Geteuid() != 0 {
		return "test hosts need root (run the tests as root: sudo -E go test ...; `make test` does)"
	}
	var need []string
	for _, r := range requirements {
		if _, err := tool(r.tool); err != nil {
			need = append(need, r.tool+" (apt-get install "+r.pkg+")")
		}
	}
	if len(need) > 0 {
		return "test hosts need " + strings.Join(need, ", ") + "; scripts/install-deps.sh installs them"
	}
	unshare, _ := tool("unshare")
	if out, err := exec.Command(unshare, "--net", "--mount", "--uts", "true").CombinedOutput(); err != nil {
		return "cannot create namespaces here (unshare --net --mount --uts: " + strings.TrimSpace(string(out)) + ")"
	}
	return ""
})

// Require skips the test unless test hosts can run here, naming what to install or change.
func Require(t testing.TB) {
	t.Helper()
	if msg := missing(); msg != "" {
		t.Skip("lab: " + msg)
	}
}

// New creates a lab of n hosts for a test, in a fresh directory /tmp/orch-lab-test-* (so
// `orchlab down --all` finds it if the test binary dies). The lab is closed and its
// directory removed when the test ends; if the test failed, each host's sshd log and the
// files registered with LogFile are logged first, each line prefixed with the host.
func New(t testing.TB, n int, opts ...Option) *Lab {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "orch-lab-test-")
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	c := newConfig(append([]Option{WithLogger(testLogger(t))}, opts...))
	c.ephemeral = true
	l, err := create(dir, c)
	if err == nil {
		err = l.setOwner(self())
	}
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.cleanUp(t) })
	if c.os == OSDebian {
		requireDebianBase(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := l.AddHosts(ctx, n); err != nil {
		t.Fatalf("lab: %v", err)
	}
	return l
}

// requireDebianBase builds the Debian base rootfs if the machine has none (once per
// machine, about a minute), or skips the test naming what is missing.
func requireDebianBase(t testing.TB) {
	t.Helper()
	for _, r := range debianRequirements {
		if _, err := tool(r.tool); err != nil {
			t.Skipf("lab: debian hosts need %s (apt-get install %s; scripts/install-deps.sh installs it)", r.tool, r.pkg)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := DebianBase(ctx); err != nil {
		t.Fatalf("lab: %v", err)
	}
}

func (l *Lab) cleanUp(t testing.TB) {
	if t.Failed() {
		l.Dump(t)
	}
	if err := l.Close(); err != nil {
		t.Errorf("lab: %v (its files stay in %s)", err, l.Dir())
		return
	}
	if err := os.RemoveAll(l.Dir()); err != nil {
		t.Errorf("lab: %v", err)
	}
}

// LogFile registers a file inside every host (e.g. /var/lib/nodeagent/daemon.log) to be
// logged when the test fails.
func (l *Lab) LogFile(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logFiles = append(l.logFiles, path)
}

// Dump logs each host's sshd log and registered files to t, each line prefixed with the
// host name and the file.
func (l *Lab) Dump(t testing.TB) {
	l.mu.Lock()
	files := append([]string(nil), l.logFiles...)
	l.mu.Unlock()
	for _, h := range l.Hosts() {
		if h.ct != nil { // a Debian host: its journal holds sshd's and the agent's logs
			logLines(t, h.Name+" journal", h.journal())
		} else {
			logLines(t, h.Name+" sshd.log", readTail(h.SSHDLogFile()))
		}
		for _, f := range files {
			logLines(t, h.Name+" "+f, h.readFile(f))
		}
	}
}

// journal returns the last 300 lines of a Debian host's journal (this boot).
func (h *Host) journal() []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "journalctl", "-b", "-n", "300", "--no-pager", "-o", "short-precise")
	if err != nil {
		return []byte(err.Error())
	}
	return out
}

// readFile reads a file of the host: through its data directory when the file is in a
// private directory (works while the host is down), otherwise inside the running host.
func (h *Host) readFile(inHost string) []byte {
	if p, ok := h.Path(inHost); ok {
		return readTail(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "tail", "-n", "500", inHost)
	if err != nil {
		return []byte(err.Error())
	}
	return out
}

// readTail returns the last 500 lines of a file (or the error reading it).
func readTail(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return []byte(err.Error())
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > 500 {
		lines = lines[len(lines)-500:]
	}
	return bytes.Join(lines, nil)
}

// tail returns the last n lines of a file on one line, for error messages.
func tail(path string, n int) string {
	lines := strings.Split(strings.TrimSpace(string(readTail(path))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func logLines(t testing.TB, prefix string, b []byte) {
	s := bufio.NewScanner(bytes.NewReader(b))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		t.Logf("%s: %s", prefix, s.Text())
	}
}

// testLogger logs the lab's steps to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.String("time", a.Value.Time().Format("15:04:05.000"))
			}
			return a
		},
	}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
