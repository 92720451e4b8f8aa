package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A container is the LXC system container behind a Debian host. Its LXC path is
// LAB_DIR/lxc (one per lab, so labs never see each other's containers), its name carries the
// lab id (LXC names cgroups after it), its rootfs an overlay of the base with
// LAB_DIR/<host>/upper, and its host-side veth is the host's Veth, so Partition and Heal
// work as on namespace hosts.
type container struct {
	h *Host
}

// bootTimeout bounds a container's boot (systemd up, sshd answering) and a reboot.
const bootTimeout = 2 * time.Minute

func (c container) lxcPath() string  { return filepath.Join(c.h.lab.st.Dir, "lxc") }
func (c container) name() string     { return c.h.st.Netns } // orl<id>-hostN, unique on the machine
func (c container) upperDir() string { return filepath.Join(c.h.DataDir(), "upper") }
func (c container) configFile() string {
	return filepath.Join(c.lxcPath(), c.name(), "config")
}

// lxc runs an LXC tool on this container and returns its standard output.
func (c container) lxc(ctx context.Context, tool string, args ...string) ([]byte, error) {
	args = append([]string{"-P", c.lxcPath(), "-n", c.name()}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %s %s: %w: %s", c.h.Name, tool, strings.Join(args[4:], " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// create writes the container's config and the host's own files into its upper layer, then
// boots it.
func (c container) create(ctx context.Context) error {
	base, err := DebianBase(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", c.h.Name, err)
	}
	if err := os.MkdirAll(c.upperDir(), 0o755); err != nil {
		return fmt.Errorf("%s: %w", c.h.Name, err)
	}
	if err := newKeyPair(c.h.hostKeyFile(), "root@"+c.h.Name); err != nil {
		return fmt.Errorf("%s: %w", c.h.Name, err)
	}
	if err := c.writeConfig(base); err != nil {
		return fmt.Errorf("%s: %w", c.h.Name, err)
	}
	if err := c.seedFiles(); err != nil {
		return fmt.Errorf("%s: %w", c.h.Name, err)
	}
	return c.start(ctx)
}

// writeConfig writes the LXC config: Debian's common settings, nesting (orch's agent runs LXC
// inside), a writable cgroup tree, no AppArmor confinement, every device allowed (loop
// devices for btrfs pools), every capability but CAP_SYS_TIME (the kernel's clock is this
// machine's: `timedatectl set-local-rtc` inside once shifted it an hour), and a static
// address on the lab bridge.
func (c container) writeConfig(base string) error {
	addr := hostAddr(c.h.lab.Subnet(), c.h.st.Index)
	lines := []string{
		"lxc.include = /usr/share/lxc/config/debian.common.conf",
		"lxc.include = /usr/share/lxc/config/nesting.conf",
		"lxc.arch = linux64",
		"lxc.uts.name = " + c.h.Name,
		"lxc.rootfs.path = overlay:" + base + ":" + c.upperDir(),
		"lxc.mount.auto = proc:rw sys:rw cgroup:rw:force",
		"lxc.apparmor.profile = unconfined",
		"lxc.cgroup2.devices.allow = a",
		"lxc.cgroup.devices.allow = a", // hybrid hierarchies: the v1 devices controller too
		"lxc.cap.drop =",               // debian.common.conf's drops undone (nested LXC, modprobe)...
		"lxc.cap.drop = sys_time",      // ...but this machine's clock is not the host's to set
		"lxc.mount.entry = /dev/loop-control dev/loop-control none bind,create=file,optional 0 0",
		"lxc.hook.autodev = " + c.autodevHook(),
		"lxc.net.0.type = veth",
		"lxc.net.0.link = " + c.h.lab.st.Bridge,
		"lxc.net.0.veth.pair = " + c.h.st.Veth,
		"lxc.net.0.flags = up",
		"lxc.net.0.name = eth0",
		"lxc.net.0.ipv4.address = " + addr.String(),
		"lxc.net.0.ipv4.gateway = " + c.h.lab.Gateway(),
		"lxc.log.file = " + filepath.Join(c.h.DataDir(), "lxc.log"),
		"lxc.log.level = WARN",
	}
	if err := os.MkdirAll(filepath.Dir(c.configFile()), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(c.autodevHook(), []byte(autodevScript), 0o755); err != nil {
		return err
	}
	return os.WriteFile(c.configFile(), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// autodevHook is the script LXC runs once the container's /dev is made.
func (c container) autodevHook() string { return filepath.Join(c.lxcPath(), c.name(), "autodev.sh") }

// autodevScript gives the container the nodes of 64 loop devices, as a real server's /dev
// has: losetup asks /dev/loop-control for a free device, which the kernel makes on demand,
// then opens its node, which LXC's minimal /dev lacks.
const autodevScript = `#!/bin/sh
i=0
while [ $i -lt 64 ]; do
  [ -e "$LXC_ROOTFS_MOUNT/dev/loop$i" ] || mknod -m 660 "$LXC_ROOTFS_MOUNT/dev/loop$i" b 7 $i
  i=$((i+1))
done
`

// seedFiles writes the host's identity into its upper layer: hostname, hosts file, sshd
// host key, the lab's client key for root, and this machine's resolver.
func (c container) seedFiles() error {
	key, err := os.ReadFile(c.h.hostKeyFile())
	if err != nil {
		return err
	}
	pub, err := os.ReadFile(c.h.hostKeyFile() + ".pub")
	if err != nil {
		return err
	}
	authorized, err := os.ReadFile(filepath.Join(c.h.lab.st.Dir, "authorized_keys"))
	if err != nil {
		return err
	}
	hosts, err := os.ReadFile(c.h.lab.hostsFile())
	if err != nil {
		return err
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	files := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{"etc/hostname", []byte(c.h.Name + "\n"), 0o644},
		{"etc/hosts", hosts, 0o644},
		{"etc/resolv.conf", resolv, 0o644},
		{"etc/ssh/ssh_host_ed25519_key", key, 0o600},
		{"etc/ssh/ssh_host_ed25519_key.pub", pub, 0o644},
		{"root/.ssh/authorized_keys", authorized, 0o600},
	}
	for _, f := range files {
		p := filepath.Join(c.upperDir(), f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.perm); err != nil {
			return err
		}
	}
	return os.Chmod(filepath.Join(c.upperDir(), "etc"), 0o755)
}

// start boots the container unless it runs, then waits until sshd answers.
func (c container) start(ctx context.Context) error {
	if !c.running() {
		if _, err := c.lxc(ctx, "lxc-start", "-d"); err != nil {
			return err
		}
	}
	return c.waitSSH(ctx)
}

// waitSSH waits until the host's sshd answers on port 22 (inside, if partitioned).
func (c container) waitSSH(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, bootTimeout)
	defer cancel()
	var last error
	for {
		if last = c.probe(ctx); last == nil {
			c.h.lab.log.Info("host up", "host", c.h.Name, "addr", c.h.Addr, "init", c.initPID())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: sshd on %s:22 not answering: %w (last error: %v)", c.h.Name, c.h.Addr, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}

func (c container) probe(ctx context.Context) error {
	if partitioned, _ := c.h.Partitioned(); partitioned {
		if pid := c.initPID(); pid > 0 {
			return c.sshdListening(ctx)
		}
		return ErrHostDown
	}
	return probeSSH(ctx, c.h.Addr)
}

// sshdListening asks the container whether something listens on port 22.
func (c container) sshdListening(ctx context.Context) error {
	out, err := c.exec(ctx, "ss", "-Htln", "sport = :22")
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return errors.New("nothing listens on port 22")
	}
	return nil
}

// initPID returns the PID (in this machine's namespace) of the container's init, 0 if it
// does not run.
func (c container) initPID() int {
	out, err := c.lxc(context.Background(), "lxc-info", "-p", "-H")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}

func (c container) running() bool {
	out, err := c.lxc(context.Background(), "lxc-info", "-s", "-H")
	return err == nil && strings.TrimSpace(string(out)) == "RUNNING"
}

// kill powers the container off at once (no shutdown): every process in it dies.
func (c container) kill() error {
	if !c.running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	if _, err := c.lxc(ctx, "lxc-stop", "-k"); err != nil {
		return err
	}
	c.h.lab.log.Info("host killed", "host", c.h.Name)
	return nil
}

// reboot asks systemd inside for a clean reboot, then waits until a new init runs and sshd
// answers again.
func (c container) reboot(ctx context.Context) error {
	before := c.bootID(ctx)
	if _, err := c.exec(ctx, "systemctl", "reboot"); err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx, bootTimeout)
	defer cancel()
	for {
		if id := c.bootID(ctx); id != "" && id != before && c.probe(ctx) == nil {
			c.h.lab.log.Info("host rebooted", "host", c.h.Name)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not back after reboot: %w", c.h.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// bootID is the container's systemd invocation: its init's start time, which a reboot changes.
func (c container) bootID(ctx context.Context) string {
	pid := c.initPID()
	if pid == 0 {
		return ""
	}
	p, ok := readProc(pid)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d-%d", pid, p.start)
}

// exec runs a command inside the container as root (lxc-attach, a clean environment).
func (c container) exec(ctx context.Context, args ...string) ([]byte, error) {
	if !c.running() {
		return nil, fmt.Errorf("%s: exec %s: %w", c.h.Name, strings.Join(args, " "), ErrHostDown)
	}
	a := append([]string{"--clear-env", "--set-var", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "--"}, args...)
	return c.lxc(ctx, "lxc-attach", a...)
}

// freeze pauses or thaws every process of the container.
func (c container) freeze(on bool) error {
	tool := "lxc-unfreeze"
	if on {
		tool = "lxc-freeze"
	}
	_, err := c.lxc(context.Background(), tool)
	return err
}

// path maps a path inside the running container to this machine's view of it.
func (c container) path(inHost string) (string, bool) {
	pid := c.initPID()
	if pid == 0 {
		return "", false
	}
	return filepath.Join(fmt.Sprintf("/proc/%d/root", pid), filepath.Clean("/"+inHost)), true
}

// destroy powers the container off and removes its LXC config; its files go with the lab.
func (c container) destroy() error {
	err := c.kill()
	if err == nil {
		err = os.RemoveAll(filepath.Join(c.lxcPath(), c.name()))
	}
	return errors.Join(err, deleteLink(c.h.st.Veth))
}
