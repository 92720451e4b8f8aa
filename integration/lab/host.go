package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startTimeout bounds Start and WaitReady when the context has no deadline.
const startTimeout = 30 * time.Second

// Host is one test host: a network namespace with an address on the lab bridge, a private
// mount namespace, and a real sshd listening on Addr:22.
type Host struct {
	// Name is host1, host2, ...: the hostname inside the host and its inventory name.
	Name string
	// Addr is the host's IPv4 address on the lab bridge; sshd listens on Addr port 22.
	Addr string

	lab *Lab
	st  hostState
	cg  cgroup
	ct  *container // the LXC system container of a Debian host, nil on a namespace host

	mu   sync.Mutex
	pid  int           // the sshd this lab started, 0 if none
	done chan struct{} // closed when that sshd has exited and been reaped
	// exitErr is how the last sshd this lab started ended (set before done is closed).
	exitErr atomic.Pointer[error]
}

func (l *Lab) newHost(hs hostState) *Host {
	h := &Host{Name: hs.Name, Addr: hs.Addr, lab: l, st: hs}
	if hs.OS == OSDebian {
		h.ct = &container{h: h}
	}
	if l.cg != "" {
		h.cg = cgroup(filepath.Join(string(l.cg), hs.Name))
	}
	return h
}

// DataDir is LAB_DIR/<host>: the host's sshd config, host key, sshd.log and, under fs/,
// its private copies of the mounted directories. It survives Kill and Restart.
func (h *Host) DataDir() string { return filepath.Join(h.lab.st.Dir, h.Name) }

// SSHDLogFile is the file sshd's log (-e) goes to.
func (h *Host) SSHDLogFile() string { return filepath.Join(h.DataDir(), "sshd.log") }

// Path maps a path inside the host to where the file lives in the root namespace, if it
// is below one of the host's private directories (e.g. /var/lib/nodeagent/x).
func (h *Host) Path(inHost string) (string, bool) {
	if h.ct != nil {
		return h.ct.path(inHost)
	}
	inHost = filepath.Clean(inHost)
	for _, m := range h.lab.st.Mounts {
		if inHost == m || strings.HasPrefix(inHost, m+"/") {
			return filepath.Join(h.DataDir(), "fs", inHost), true
		}
	}
	return "", false
}

func (h *Host) mountSource(m string) string { return filepath.Join(h.DataDir(), "fs", m) }
func (h *Host) sshdConfigFile() string      { return filepath.Join(h.DataDir(), "sshd_config") }
func (h *Host) hostKeyFile() string         { return filepath.Join(h.DataDir(), "ssh_host_ed25519_key") }
func (h *Host) netnsPath() string           { return filepath.Join(netnsDir, h.st.Netns) }

// create makes the host's files, namespace and link, then starts it.
func (h *Host) create(ctx context.Context) error {
	if h.ct != nil {
		return h.ct.create(ctx)
	}
	if err := h.prepareFiles(); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	if err := createNetns(h.st.Netns); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	addr := hostAddr(h.lab.Subnet(), h.st.Index)
	if err := createVeth(h.st.Veth, h.lab.st.Bridge, h.st.Netns, addr); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	return h.Start(ctx)
}

// prepareFiles writes the host key and sshd config and makes the mount sources and targets.
func (h *Host) prepareFiles() error {
	dirs := []string{filepath.Join(h.DataDir(), "cgroup"), "/run/sshd"}
	for _, m := range h.lab.st.Mounts {
		dirs = append(dirs, h.mountSource(m), m)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := h.seedHome(); err != nil {
		return err
	}
	if err := newKeyPair(h.hostKeyFile(), "root@"+h.Name); err != nil {
		return err
	}
	cfg := sshdConfig(h.Addr, h.hostKeyFile(), filepath.Join(h.lab.st.Dir, "authorized_keys"))
	return os.WriteFile(h.sshdConfigFile(), []byte(cfg), 0o644)
}

// seedHome gives a new host's private /root the files of /etc/skel, as useradd would.
func (h *Host) seedHome() error {
	home := h.mountSource("/root")
	if err := os.Chmod(home, 0o700); err != nil {
		return err
	}
	skel, _ := os.ReadDir("/etc/skel")
	for _, e := range skel {
		dst := filepath.Join(home, e.Name())
		if !e.Type().IsRegular() {
			continue
		}
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/etc/skel", e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Start starts the host's sshd (in a new mount namespace over the same data) and waits
// until it answers on port 22 (on a partitioned host: until it listens). Starting a
// running host only waits for it.
func (h *Host) Start(ctx context.Context) error {
	if h.ct != nil {
		return h.ct.start(ctx)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sshdPIDLocked() == 0 {
		if err := h.launch(); err != nil {
			return fmt.Errorf("%s: starting sshd: %w", h.Name, err)
		}
	}
	probe := func(ctx context.Context) error { return probeSSH(ctx, h.Addr) }
	if partitioned, _ := h.Partitioned(); partitioned {
		pid := h.pid // unreachable from outside: check that sshd listens inside
		probe = func(context.Context) error { return listening(pid, 22) }
	}
	if err := h.waitReady(ctx, h.done, probe); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	h.lab.log.Info("host up", "host", h.Name, "addr", h.Addr, "pid", h.pid)
	return nil
}

// launch starts nsenter(net) → unshare(mount, uts) → sh → exec sshd, all one PID, inside
// the host's cgroup and its own session.
func (h *Host) launch() error {
	sshd, err := tool("sshd")
	if err != nil {
		return err
	}
	unshare, err := tool("unshare")
	if err != nil {
		return err
	}
	args := []string{"--net=" + h.netnsPath(), "--", unshare, "--mount", "--uts", "--propagation", "private",
		"--", "/bin/sh", "-c", launchScript(h, sshd)}
	cmd, err := h.command(context.Background(), "nsenter", args...)
	if err != nil {
		return err
	}
	cmd.SysProcAttr.Setsid = true
	if h.cg, err = h.lab.cg.child(h.Name); err != nil {
		return err
	}
	logf, err := os.OpenFile(h.SSHDLogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startIn(cmd, h.cg); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		h.exitErr.Store(&err)
		close(done)
	}()
	h.pid, h.done = cmd.Process.Pid, done
	return nil
}

// command builds an exec.Cmd for a system tool.
func (h *Host) command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	path, err := tool(name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	return cmd, nil
}

// startIn starts cmd directly inside cgroup cg (clone3 CLONE_INTO_CGROUP), so no process
// of the host ever runs outside it.
func startIn(cmd *exec.Cmd, cg cgroup) error {
	f, err := cg.open()
	if err != nil {
		return err
	}
	if f != nil {
		defer f.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(f.Fd())
	}
	return cmd.Start()
}

// WaitReady waits until the host's sshd answers on port 22 from the root namespace (e.g.
// after Heal).
func (h *Host) WaitReady(ctx context.Context) error {
	if h.ct != nil {
		return h.ct.waitSSH(ctx)
	}
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	probe := func(ctx context.Context) error { return probeSSH(ctx, h.Addr) }
	if err := h.waitReady(ctx, done, probe); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	return nil
}

// waitReady polls probe until it succeeds, sshd exits (done) or ctx ends.
func (h *Host) waitReady(ctx context.Context, done <-chan struct{}, probe func(context.Context) error) error {
	ctx, cancel := withDefaultTimeout(ctx, startTimeout)
	defer cancel()
	for {
		last := probe(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("sshd exited (%v): %s", *h.exitErr.Load(), tail(h.SSHDLogFile(), 5))
		case <-ctx.Done():
			return fmt.Errorf("sshd on %s:22 not answering: %w (last error: %v)", h.Addr, ctx.Err(), last)
		case <-time.After(10 * time.Millisecond): // poll interval
		}
	}
}

// probeSSH connects to addr:22 and reads the SSH banner.
func probeSSH(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	buf := make([]byte, 4)
	if _, err := conn.Read(buf); err != nil {
		return fmt.Errorf("reading banner: %w", err)
	}
	if string(buf) != "SSH-" {
		return fmt.Errorf("unexpected banner %q", buf)
	}
	return nil
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// Kill sends SIGKILL to every process of the host: sshd, its sessions, whatever they
// started (daemons that left the session, containers that left the namespaces). The host's
// network namespace and data stay; Start brings it back.
func (h *Host) Kill() error {
	if h.ct != nil {
		return h.ct.kill()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.killLocked()
}

func (h *Host) killLocked() error {
	pids, _, _ := findLive(h.members) // with LXC containers' inits, their monitors' children
	lxc := lxcCgroups(pids)
	err := h.cg.kill()
	err = errors.Join(err, killAll(h.Name, h.members, pids...))
	removeLXCCgroups(lxc)
	// A fresh cgroup for the next start: the kernel kills a process cloned into a cgroup
	// that was killed through cgroup.kill before (seen on Linux 6.18), and a paused
	// host's cgroup would freeze the next sshd.
	err = errors.Join(err, h.cg.remove())
	if h.done != nil {
		select {
		case <-h.done:
		case <-time.After(killTimeout):
			err = errors.Join(err, fmt.Errorf("sshd pid %d not reaped", h.pid))
		}
	}
	h.pid, h.done = 0, nil
	if err != nil {
		return fmt.Errorf("%s: kill: %w", h.Name, err)
	}
	h.lab.log.Info("host killed", "host", h.Name)
	return nil
}

// members lists the processes in the host's network namespace and cgroup.
func (h *Host) members() ([]int, error) {
	inNet, err := netnsMembers(h.st.Netns)
	inCg, cerr := h.cg.procs()
	return append(inNet, inCg...), errors.Join(err, cerr)
}

// Restart kills the host and starts it again: same data, same keys, same address.
func (h *Host) Restart(ctx context.Context) error {
	if err := h.Kill(); err != nil {
		return err
	}
	return h.Start(ctx)
}

// Reboot reboots a Debian host cleanly through systemd and waits until sshd answers again.
// Namespace hosts have no init to reboot them: Restart is their nearest equivalent.
func (h *Host) Reboot(ctx context.Context) error {
	if h.ct == nil {
		return fmt.Errorf("%s: reboot: %w (namespace hosts have no init; use Restart)", h.Name, errors.ErrUnsupported)
	}
	return h.ct.reboot(ctx)
}

// OS is the kind of host: OSNamespace or OSDebian.
func (h *Host) OS() string { return h.st.OS }

// Partition sets the host's link down: the host becomes unreachable, its processes live on.
func (h *Host) Partition() error {
	if err := setLinkUp(h.st.Veth, false); err != nil {
		return fmt.Errorf("%s: partition: %w", h.Name, err)
	}
	h.lab.log.Info("host partitioned", "host", h.Name)
	return nil
}

// Heal sets the host's link up again after Partition.
func (h *Host) Heal() error {
	if err := setLinkUp(h.st.Veth, true); err != nil {
		return fmt.Errorf("%s: heal: %w", h.Name, err)
	}
	h.lab.log.Info("host healed", "host", h.Name)
	return nil
}

// Partitioned reports whether the host's link is down.
func (h *Host) Partitioned() (bool, error) {
	up, err := linkIsUp(h.st.Veth)
	return !up, err
}

// Pause freezes every process of the host (cgroup v2 freezer), like a hung machine whose
// network still answers ARP; Resume thaws it.
func (h *Host) Pause() error {
	if h.ct != nil {
		return h.ct.freeze(true)
	}
	if err := h.cg.freeze(true); err != nil {
		return fmt.Errorf("%s: pause: %w", h.Name, err)
	}
	return nil
}

// Resume thaws a paused host.
func (h *Host) Resume() error {
	if h.ct != nil {
		return h.ct.freeze(false)
	}
	if err := h.cg.freeze(false); err != nil {
		return fmt.Errorf("%s: resume: %w", h.Name, err)
	}
	return nil
}

// Running reports whether the host's sshd is alive.
func (h *Host) Running() bool {
	if h.ct != nil {
		return h.ct.running()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sshdPIDLocked() != 0
}

// Exec runs a command inside the host's network, mount and UTS namespaces (as root, not
// through SSH) and returns its standard output; the error carries its standard error.
func (h *Host) Exec(ctx context.Context, args ...string) ([]byte, error) {
	if h.ct != nil {
		return h.ct.exec(ctx, args...)
	}
	h.mu.Lock()
	pid, cg := h.sshdPIDLocked(), h.cg
	h.mu.Unlock()
	if pid == 0 {
		return nil, fmt.Errorf("%s: exec %s: %w", h.Name, strings.Join(args, " "), ErrHostDown)
	}
	nsArgs := append([]string{"--target", fmt.Sprint(pid), "--net", "--mount", "--uts", "--"}, args...)
	cmd, err := h.command(ctx, "nsenter", nsArgs...)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second // a daemon started without redirecting must not hang Exec
	err = startIn(cmd, cg)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: exec %s: %w: %s", h.Name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// sshdPIDLocked returns the PID of the host's listening sshd, or 0 when it is down. A lab
// from Load finds it as the sshd in the namespace whose parent is outside it.
func (h *Host) sshdPIDLocked() int {
	if h.pid != 0 && h.inHost(h.pid) {
		return h.pid
	}
	h.pid = 0
	members, err := netnsMembers(h.st.Netns)
	if err != nil {
		return 0
	}
	in := map[int]bool{}
	for _, pid := range members {
		in[pid] = true
	}
	for _, pid := range members {
		if p, ok := readProc(pid); ok && p.comm == "sshd" && p.state != 'Z' && !in[p.ppid] {
			h.pid = pid
			return pid
		}
	}
	return 0
}

// inHost reports whether pid is a live process in the host's network namespace.
func (h *Host) inHost(pid int) bool {
	var want, got unix.Stat_t
	if unix.Stat(h.netnsPath(), &want) != nil || unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got) != nil {
		return false
	}
	p, ok := readProc(pid)
	return ok && p.state != 'Z' && got.Ino == want.Ino && got.Dev == want.Dev
}

// destroy kills the host and removes its link, namespace and cgroup.
func (h *Host) destroy() error {
	if h.ct != nil {
		return h.ct.destroy()
	}
	err := h.Kill()
	err = errors.Join(err, deleteLink(h.st.Veth), deleteNetns(h.st.Netns), h.cg.remove())
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	return nil
}
