package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDebianHost: a Debian host is a real server as far as orch can tell: systemd is PID 1,
// sshd runs as a unit, it has its own package database (none of this machine's LXC), apt
// reaches the mirror through the lab's NAT, it reboots cleanly through systemd, powers off
// hard and on, and partitions like a namespace host.
func TestDebianHost(t *testing.T) {
	l := New(t, 1, WithOS(OSDebian))
	h := l.Hosts()[0]
	if got := mustSSH(t, l, h.Name, "ps -p 1 -o comm="); got != "systemd" {
		t.Fatalf("PID 1 is %q, want systemd", got)
	}
	if got := mustSSH(t, l, h.Name, "systemctl is-active ssh; hostname; . /etc/os-release; echo $VERSION_ID"); got != "active\nhost1\n12" {
		t.Errorf("sshd unit, hostname, Debian version: %q", got)
	}
	if _, err := exec.LookPath("lxc-start"); err == nil {
		if out, err := sshRun(t, l, h.Name, nil, "dpkg -s lxc"); err == nil {
			t.Errorf("the host shares this machine's packages: dpkg -s lxc says %s", out)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if out, err := h.Exec(ctx, "apt-get", "-q", "update"); err != nil {
		t.Fatalf("apt-get update through the lab's NAT: %v\n%s", err, out)
	}

	before := h.ct.bootID(ctx)
	if err := h.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if after := h.ct.bootID(ctx); after == before {
		t.Errorf("reboot kept the same init (%s)", after)
	}
	if got := mustSSH(t, l, h.Name, "systemctl is-system-running --wait"); got != "running" {
		t.Errorf("after reboot: system %q", got)
	}

	if err := h.Kill(); err != nil {
		t.Fatal(err)
	}
	if h.Running() || unreachable(h) != nil {
		t.Fatal("killed host still runs or answers")
	}
	if _, err := h.Exec(ctx, "true"); !errors.Is(err, ErrHostDown) {
		t.Errorf("exec on a powered-off host: %v, want ErrHostDown", err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Partition(); err != nil {
		t.Fatal(err)
	}
	if err := unreachable(h); err != nil {
		t.Errorf("partitioned: %v", err)
	}
	if err := h.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDebianLabRemovedWhole: closing a Debian lab leaves no container, link or NAT table.
func TestDebianLabRemovedWhole(t *testing.T) {
	l := New(t, 1, WithOS(OSDebian))
	h, nat := l.Hosts()[0], l.st.NAT
	if !natTables()[nat] {
		t.Fatalf("NAT table %s missing while the lab is up", nat)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if h.ct.running() {
		t.Error("container still running")
	}
	if natTables()[nat] {
		t.Errorf("NAT table %s left behind", nat)
	}
	if out, _ := exec.CommandContext(context.Background(), "ip", "-o", "link").Output(); strings.Contains(string(out), h.st.Veth) {
		t.Errorf("link %s left behind", h.st.Veth)
	}
}

// capSysTime is CAP_SYS_TIME's bit in /proc/PID/status's capability masks.
const capSysTime = 25

// TestDebianHostCannotSetClock: a Debian host shares this machine's kernel, and so its
// clock; with CAP_SYS_TIME a command inside (`timedatectl set-local-rtc`, `date -s`) sets
// this machine's time (a test once shifted it an hour back). The container's init must lack
// it in its bounding set, so nothing inside can gain it; only then is `date -s` tried (to
// the current second), and it must be refused with this machine's clock untouched.
func TestDebianHostCannotSetClock(t *testing.T) {
	l := New(t, 1, WithOS(OSDebian))
	h := l.Hosts()[0]
	pid := h.ct.initPID()
	if pid <= 0 {
		t.Fatalf("%s: no init PID", h.Name)
	}
	bnd, err := capBounding(pid)
	if err != nil {
		t.Fatal(err)
	}
	if bnd&(1<<capSysTime) != 0 {
		t.Fatalf("%s: init (PID %d) has CAP_SYS_TIME in its bounding set (CapBnd %016x): it can set this machine's clock", h.Name, pid, bnd)
	}
	offset := func() time.Duration { // the wall clock against the monotonic one
		var ts unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		return time.Duration(time.Now().UnixNano() - ts.Nano())
	}
	before := offset()
	out, err := sshRun(t, l, h.Name, nil, "date -s @$(date +%s)")
	if err == nil || !strings.Contains(out, "not permitted") {
		t.Errorf("%s: date -s: %v %q, want it refused (Operation not permitted)", h.Name, err, out)
	}
	if d := offset() - before; d > time.Second || d < -time.Second {
		t.Errorf("this machine's clock moved by %v while %s ran date -s", d, h.Name)
	}
}

// capBounding reads the capability bounding set of process pid.
func capBounding(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no CapBnd line", pid)
}
