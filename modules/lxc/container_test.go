package lxc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"orch/internal/syncbuf"
	"orch/internal/wait"

	"github.com/vishvananda/netlink"
)

// needLXC skips unless the test runs as root with LXC's tools and a static busybox.
func needLXC(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run LXC containers")
	}
	for _, tool := range []string{"lxc-create", "lxc-start", "lxc-attach", "lxc-stop", "lxc-destroy", "lxc-info", "lxc-ls", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install lxc (apt-get install lxc)", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("no /bin/busybox: install busybox-static")
	}
}

// busyboxRootfs builds the busybox image with scripts/mkimage.sh once per test binary
// and unpacks it into a fresh directory.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	img := imageTarball(t)
	dir := filepath.Join(t.TempDir(), "rootfs")
	must(t, os.Mkdir(dir, 0o755))
	if out, err := exec.Command("tar", "--numeric-owner", "-xpf", img, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v: %s", img, err, out)
	}
	return dir
}

var builtImage string

func imageTarball(t *testing.T) string {
	t.Helper()
	if builtImage != "" {
		return builtImage
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("orch-lxc-test-%d.tar.gz", os.Getpid()))
	cmd := exec.Command("../../scripts/mkimage.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkimage.sh: %v: %s", err, b)
	}
	builtImage = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtImage != "" {
		os.Remove(builtImage)
	}
	os.Exit(code)
}

// testBridge makes a bridge without addresses (no traffic leaves it) and removes it in
// Cleanup.
func testBridge(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("orchxt%d", os.Getpid()%100000)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("bridge %s: %v", name, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatalf("bridge %s up: %v", name, err)
	}
	return name
}

// newTestManager makes a Manager in a temporary lxcpath whose containers are killed and
// destroyed in Cleanup, even when the test fails.
func newTestManager(t *testing.T, prefix string) *Manager {
	t.Helper()
	m, err := New(Config{LXCPath: filepath.Join(t.TempDir(), "containers"), CgroupPrefix: prefix,
		Timeout: 30 * time.Second, StopTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("agent", prefix)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(m.LXCPath())
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := m.Delete(ctx, e.Name(), true); err != nil {
				t.Logf("cleanup %s: %v", e.Name(), err)
			}
			cancel()
		}
	})
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestContainerLifecycle(t *testing.T) {
	needLXC(t)
	m := newTestManager(t, "lxctest")
	br := testBridge(t)
	rootfs := busyboxRootfs(t)
	c := ctx(t)

	must(t, m.Create(c, "c1", CreateConfig{Rootfs: rootfs, Bridge: br, IPv4: "10.254.77.10/24"}))
	if err := m.Create(c, "c1", CreateConfig{Rootfs: rootfs}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if err := m.Create(c, "-bad", CreateConfig{Rootfs: rootfs}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name: %v, want ErrInvalidName", err)
	}
	if _, err := m.Exec(c, "c1", []string{"true"}, nil, nil, nil, ExecOptions{}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("exec on stopped: %v, want ErrNotRunning", err)
	}
	must(t, m.Start(c, "c1"))
	// The address shows once the container's init has brought eth0 up, a moment after
	// Start returns on a loaded machine.
	var in Info
	if err := wait.Until(30*time.Second, func() error {
		var err error
		if in, err = m.Info(c, "c1"); err != nil {
			return err
		}
		if in.State != StateRunning || in.PID <= 0 || len(in.IPv4) != 1 || in.IPv4[0] != "10.254.77.10" {
			return fmt.Errorf("info after start = %+v", in)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	staticAddressKept(t, m, "c1", "10.254.77.10")
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", in.PID))
	if !strings.Contains(string(cg), "lxc.payload.lxctest-c1") {
		t.Errorf("init not in the per-agent cgroup: %s", cg)
	}

	t.Run("exec", func(t *testing.T) { testExec(t, m) })
	t.Run("files", func(t *testing.T) { testFiles(t, m, rootfs) })
	t.Run("exec on a terminal", func(t *testing.T) { testExecTTY(t, m) })

	names, err := m.Names(c)
	must(t, err)
	if len(names) != 1 || names[0] != "c1" {
		t.Fatalf("Names = %v", names)
	}
	if err := m.Delete(c, "c1", false); !errors.Is(err, ErrRunning) {
		t.Fatalf("delete running without force: %v, want ErrRunning", err)
	}
	testFreeze(t, m, "c1")
	must(t, m.Restart(c, "c1", false))
	must(t, m.Stop(c, "c1", false))
	if err := m.Freeze(c, "c1"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("freeze a stopped container: %v, want ErrNotRunning", err)
	}
	in, err = m.Info(c, "c1")
	must(t, err)
	if in.State != StateStopped {
		t.Fatalf("state after stop = %s", in.State)
	}
	must(t, m.Start(c, "c1"))
	must(t, m.Delete(c, "c1", true))
	if m.Exists("c1") {
		t.Fatal("c1 still exists after delete")
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin", "busybox")); err != nil {
		t.Fatalf("delete touched the caller's rootfs: %v", err)
	}
	if _, err := m.Info(c, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("info after delete: %v, want ErrNotFound", err)
	}
}

// testFreeze freezes and thaws a running container, each twice (the second a no-op).
func testFreeze(t *testing.T, m *Manager, name string) {
	t.Helper()
	c := ctx(t)
	for _, step := range []struct {
		do   func(context.Context, string) error
		want State
	}{{m.Freeze, StateFrozen}, {m.Freeze, StateFrozen}, {m.Unfreeze, StateRunning}, {m.Unfreeze, StateRunning}} {
		must(t, step.do(c, name))
		if in, err := m.Info(c, name); err != nil || in.State != step.want {
			t.Fatalf("state %s (%v), want %s", in.State, err, step.want)
		}
	}
}

// staticAddressKept: once the image's rcS has run (init starts the respawned sleep only
// after its sysinit entry), no DHCP client runs on an interface LXC gave a static address,
// and the address is still there (a udhcpc deconfig flushed it on a loaded machine).
func staticAddressKept(t *testing.T, m *Manager, name, addr string) {
	t.Helper()
	c := ctx(t)
	if err := wait.Until(30*time.Second, func() error {
		code, err := m.Exec(c, name, []string{"pidof", "sleep"}, nil, nil, nil, ExecOptions{})
		if err == nil && code != 0 {
			err = fmt.Errorf("rcS still running (pidof sleep: %d)", code)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	code, err := m.Exec(c, name, []string{"pidof", "udhcpc"}, nil, nil, nil, ExecOptions{})
	must(t, err)
	if code == 0 {
		t.Errorf("%s: udhcpc runs on an interface with a static address", name)
	}
	in, err := m.Info(c, name)
	must(t, err)
	if len(in.IPv4) != 1 || in.IPv4[0] != addr {
		t.Errorf("%s: addresses after rcS = %v, want [%s]", name, in.IPv4, addr)
	}
}

// testExecTTY: with TTY the command runs on a terminal of the container's (tty names a
// /dev/pts path) of the given size, its lines end "\r\n" as on any terminal, typed input
// reaches it, a resize reaches it, and its exit code survives.
func testExecTTY(t *testing.T, m *Manager) {
	c := ctx(t)
	var out bytes.Buffer
	code, err := m.Exec(c, "c1", []string{"sh", "-c", "tty; stty size; exit 4"}, nil, &out, nil,
		ExecOptions{TTY: &TTY{Size: Window{Width: 100, Height: 30}}})
	must(t, err)
	if code != 4 || !regexp.MustCompile(`^/dev/pts/\d+\r\n30 100\r\n$`).MatchString(out.String()) {
		t.Fatalf("exec on a terminal = %d, %q", code, out.String())
	}
	resize := make(chan Window, 1)
	stdin, typed := io.Pipe()
	defer typed.Close()
	done := make(chan error, 1)
	out2 := &syncbuf.Buffer{}
	go func() {
		_, err := m.Exec(c, "c1", []string{"sh", "-c", "while read x; do stty size; done"}, stdin, out2, nil,
			ExecOptions{TTY: &TTY{Size: Window{Width: 100, Height: 30}, Resize: resize}})
		done <- err
	}()
	resize <- Window{Width: 120, Height: 40}
	// Each line typed makes the loop print the size, until it is the new one.
	wait.ForEvery(t, 10*time.Second, 50*time.Millisecond, "the command seeing the resize to 120x40", func() error {
		if got := out2.String(); !strings.Contains(got, "40 120") {
			_, _ = typed.Write([]byte("\r"))
			return fmt.Errorf("the command saw %q", got)
		}
		return nil
	})
	_, _ = typed.Write([]byte{4}) // ^D: read fails, the loop ends
	must(t, <-done)
}

func testExec(t *testing.T, m *Manager) {
	c := ctx(t)
	var out, errb bytes.Buffer
	code, err := m.Exec(c, "c1", []string{"sh", "-c", "cat; echo oops >&2; hostname; exit 3"},
		strings.NewReader("from stdin\n"), &out, &errb, ExecOptions{})
	must(t, err)
	if code != 3 || out.String() != "from stdin\nc1\n" || errb.String() != "oops\n" {
		t.Fatalf("exec = %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	code, err = m.Exec(c, "c1", []string{"pwd"}, nil, &out, nil, ExecOptions{Cwd: "/etc"})
	must(t, err)
	if code != 0 || out.String() != "/etc\n" {
		t.Fatalf("exec pwd in /etc = %d %q", code, out.String())
	}
	code, err = m.Exec(c, "c1", []string{"/no/such/command"}, nil, nil, nil, ExecOptions{})
	must(t, err)
	if code != 127 && code != 126 && code != 1 {
		t.Fatalf("missing command exit code %d", code)
	}
}

func testFiles(t *testing.T, m *Manager, rootfs string) {
	must(t, m.FilePush("c1", "/root/hello.txt", strings.NewReader("hi there"), PushOptions{Mode: 0o600, UID: 1, GID: 2}))
	var out bytes.Buffer
	code, err := m.Exec(ctx(t), "c1", []string{"cat", "/root/hello.txt"}, nil, &out, nil, ExecOptions{})
	if err != nil || code != 0 || out.String() != "hi there" {
		t.Fatalf("cat pushed file in container: %d %v %q", code, err, out.String())
	}
	out.Reset()
	info, err := m.FilePull("c1", "/root/hello.txt", &out)
	must(t, err)
	if out.String() != "hi there" || info.Mode != 0o600 || info.UID != 1 || info.GID != 2 || info.Size != 8 {
		t.Fatalf("pull = %q %+v", out.String(), info)
	}

	// The host secret is outside the rootfs; the container points at it in every way.
	secret := filepath.Join(filepath.Dir(rootfs), "host-secret")
	must(t, os.WriteFile(secret, []byte("host only"), 0o600))
	_, err = m.Exec(ctx(t), "c1", []string{"sh", "-c",
		"ln -s " + secret + " /abs && ln -s ../../../../../../../../.." + secret + " /rel && ln -s /root /rootdir"}, nil, nil, nil, ExecOptions{})
	must(t, err)
	for _, p := range []string{"../host-secret", "/root/../../host-secret", "/abs", "/rel"} {
		out.Reset()
		if _, err := m.FilePull("c1", p, &out); err == nil || strings.Contains(out.String(), "host only") {
			t.Errorf("pull %s: %v, read %q: escaped the rootfs", p, err, out.String())
		}
		if err := m.FilePush("c1", p, strings.NewReader("pwned"), PushOptions{}); err == nil {
			// Allowed only when it landed inside the rootfs.
			if b, _ := os.ReadFile(secret); string(b) != "host only" {
				t.Fatalf("push %s overwrote the host file", p)
			}
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "host only" {
		t.Fatalf("host file changed: %q", b)
	}
	// A symlink to a directory inside the container is followed inside it.
	out.Reset()
	_, err = m.FilePull("c1", "/rootdir/hello.txt", &out)
	if err != nil || out.String() != "hi there" {
		t.Fatalf("pull through an inside symlink: %v %q", err, out.String())
	}
	if _, err := m.FilePull("c1", "/etc", &out); err == nil {
		t.Fatal("pulling a directory succeeded")
	}
}

// TestSameNameTwoAgents runs a container named c1 under two agents on one machine: each
// gets its own cgroup (no c1-1 renaming) and its own lxcpath.
func TestSameNameTwoAgents(t *testing.T) {
	needLXC(t)
	c := ctx(t)
	var pids []int
	for _, agent := range []string{"agentA", "agentB"} {
		m := newTestManager(t, agent)
		must(t, m.Create(c, "c1", CreateConfig{Rootfs: busyboxRootfs(t)}))
		must(t, m.Start(c, "c1"))
		in, err := m.Info(c, "c1")
		must(t, err)
		cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", in.PID))
		if !strings.Contains(string(cg), "lxc.payload."+agent+"-c1\n") {
			t.Errorf("%s: cgroup %s", agent, cg)
		}
		pids = append(pids, in.PID)
	}
	if pids[0] == pids[1] {
		t.Fatal("both agents report the same container")
	}
}

// TestFailedStartLeavesNoCgroup starts a container whose rootfs has no init twice: both
// starts fail for that reason (not on a monitor cgroup the first one left), no cgroup of
// the container is left, and after init is put back the container starts.
func TestFailedStartLeavesNoCgroup(t *testing.T) {
	needLXC(t)
	m := newTestManager(t, fmt.Sprintf("lxcfail%d", os.Getpid()%100000))
	rootfs := busyboxRootfs(t)
	must(t, os.Remove(filepath.Join(rootfs, "sbin", "init")))
	c := ctx(t)
	must(t, m.Create(c, "noinit", CreateConfig{Rootfs: rootfs}))
	for i := range 2 {
		err := m.Start(c, "noinit")
		if err == nil {
			t.Fatalf("start %d of a container without init succeeded", i+1)
		}
		if strings.Contains(err.Error(), "monitor cgroup") {
			t.Fatalf("start %d failed on a left-over cgroup: %v", i+1, err)
		}
	}
	if m.hasCgroups("noinit") {
		t.Fatal("cgroups left after failed starts")
	}
	must(t, os.Link(filepath.Join(rootfs, "bin", "busybox"), filepath.Join(rootfs, "sbin", "init")))
	must(t, m.Start(c, "noinit"))
	must(t, m.Delete(c, "noinit", true))
}
