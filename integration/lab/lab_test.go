package lab

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// sshRun runs a command on a host with the real OpenSSH client, the lab's key and
// known_hosts, and StrictHostKeyChecking=yes (from the lab's ssh_config).
func sshRun(t *testing.T, l *Lab, target string, extra []string, command string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("needs the OpenSSH client: apt-get install openssh-client")
	}
	args := append([]string{"-F", l.SSHConfigFile()}, extra...)
	args = append(args, target, command)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func mustSSH(t *testing.T, l *Lab, target, command string) string {
	t.Helper()
	out, err := sshRun(t, l, target, nil, command)
	if err != nil {
		t.Fatalf("ssh %s %q: %v: %s", target, command, err, out)
	}
	return out
}

// unreachable reports whether nothing answers SSH on the host's port 22.
func unreachable(h *Host) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := probeSSH(ctx, h.Addr); err == nil {
		return errors.New("sshd still answers")
	}
	return nil
}

func TestHostsAnswerSSH(t *testing.T) {
	l := New(t, 3)
	for _, h := range l.Hosts() {
		if pids, _ := netnsMembers(h.st.Netns); slices.Contains(pids, os.Getpid()) {
			t.Errorf("the test process is inside %s's network namespace", h.Name)
		}
		if got := mustSSH(t, l, h.Name, "hostname"); got != h.Name {
			t.Errorf("%s: hostname = %q", h.Name, got)
		}
		if got := mustSSH(t, l, "root@"+h.Addr, "ip -4 -o addr show dev eth0"); !strings.Contains(got, " "+h.Addr+"/24 ") {
			t.Errorf("%s: eth0 lacks %s: %s", h.Name, h.Addr, got)
		}
	}
}

func TestPrivateDirectories(t *testing.T) {
	l := New(t, 2)
	h1, h2 := l.Hosts()[0], l.Hosts()[1]
	const file = "/var/lib/nodeagent/probe-" + "private"
	mustSSH(t, l, h1.Name, "echo hello > "+file)
	if out, err := sshRun(t, l, h2.Name, nil, "cat "+file); err == nil {
		t.Errorf("host2 sees host1's file: %s", out)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root namespace sees host1's file: %v", err)
	}
	p, ok := h1.Path(file)
	if b, err := os.ReadFile(p); !ok || string(b) != "hello\n" {
		t.Errorf("host1's data dir %s: %q, %v", p, b, err)
	}
	if got := mustSSH(t, l, h1.Name, "ls /sys/class/net | tr '\\n' ' '"); got != "eth0 lo" {
		t.Errorf("host1's /sys/class/net: %q, want its own links", got)
	}
	if got := mustSSH(t, l, h1.Name, "ls /sys/fs/cgroup | wc -l"); got == "0" {
		t.Errorf("host1 lost /sys/fs/cgroup")
	}
	if got := mustSSH(t, l, h1.Name, "grep -c ' /run/netns/' /proc/self/mountinfo || true"); got != "0" {
		t.Errorf("host1 holds %s netns mounts (they keep deleted namespaces alive)", got)
	}
}

// TestNoNetnsMountsAfterIPNetnsAdd: once something has run `ip netns add` (which bind-mounts
// /run/netns on itself, shared), a new host still holds none of the netns mounts of labs
// made before or after it (they would keep deleted namespaces alive).
func TestNoNetnsMountsAfterIPNetnsAdd(t *testing.T) {
	before := New(t, 1)
	probe := namePrefix + before.ID() + "-probe"
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", probe).Run() })
	l := New(t, 1)
	if got := mustSSH(t, l, "host1", "grep -c ' /run/netns' /proc/self/mountinfo || true"); got != "0" {
		t.Errorf("host1 holds %s netns mounts", got)
	}
}

func TestSudoUser(t *testing.T) {
	l := New(t, 1)
	out := mustSSH(t, l, TestUser+"@host1", "id -un; sudo -n id -u")
	if out != TestUser+"\n0" {
		t.Errorf("orchtest with sudo: got %q, want %q", out, TestUser+"\n0")
	}
}

func TestProxyJump(t *testing.T) {
	l := New(t, 2)
	h1 := l.Hosts()[0]
	out, err := sshRun(t, l, "host2", []string{"-J", "host1"}, "echo $SSH_CONNECTION")
	if err != nil {
		t.Fatalf("ssh -J host1 host2: %v: %s", err, out)
	}
	if from := strings.Fields(out); len(from) == 0 || from[0] != h1.Addr {
		t.Errorf("host2 saw the connection come from %q, want host1 %s", out, h1.Addr)
	}
}

func TestKillAndStart(t *testing.T) {
	l := New(t, 2)
	h := l.Hosts()[0]
	mustSSH(t, l, h.Name, "echo kept > /var/lib/nodeagent/data; setsid sleep 1000 </dev/null >/dev/null 2>&1 &")
	if err := h.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := unreachable(h); err != nil {
		t.Errorf("after Kill: %v", err)
	}
	if pids, _ := h.members(); len(pids) != 0 {
		t.Errorf("after Kill, processes left in %s: %v", h.Name, pids)
	}
	if _, err := h.Exec(t.Context(), "true"); !errors.Is(err, ErrHostDown) {
		t.Errorf("Exec on a killed host: %v, want ErrHostDown", err)
	}
	if got := mustSSH(t, l, "host2", "hostname"); got != "host2" {
		t.Errorf("host2 after killing host1: %q", got)
	}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := mustSSH(t, l, h.Name, "cat /var/lib/nodeagent/data"); got != "kept" {
		t.Errorf("data after restart: %q", got)
	}
	if err := h.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustSSH(t, l, h.Name, "true")
}

func TestPartitionAndHeal(t *testing.T) {
	l := New(t, 2)
	h := l.Hosts()[0]
	if err := h.Partition(); err != nil {
		t.Fatal(err)
	}
	if err := unreachable(h); err != nil {
		t.Errorf("after Partition: %v", err)
	}
	if p, err := h.Partitioned(); !p || err != nil {
		t.Errorf("Partitioned() = %v, %v", p, err)
	}
	if !h.Running() {
		t.Errorf("partitioned host's sshd died")
	}
	if out, err := sshRun(t, l, "host2", nil, "ping -c1 -W1 "+h.Addr+" || nc -z -w1 "+h.Addr+" 22"); err == nil {
		t.Errorf("host2 reaches partitioned host1: %s", out)
	}
	if err := h.Restart(t.Context()); err != nil {
		t.Fatalf("restarting a partitioned host: %v", err)
	}
	if err := h.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustSSH(t, l, h.Name, "true")
}

func TestPauseAndResume(t *testing.T) {
	l := New(t, 1)
	h := l.Hosts()[0]
	if err := h.Pause(); errors.Is(err, ErrNoCgroup) {
		t.Skip("needs cgroup v2")
	} else if err != nil {
		t.Fatal(err)
	}
	if err := unreachable(h); err != nil {
		t.Errorf("paused host: %v", err)
	}
	if err := h.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := h.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.Pause(); err != nil { // a paused host can be restarted (and closed: cleanup)
		t.Fatal(err)
	}
	if err := h.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustSSH(t, l, h.Name, "true")
	if err := h.Pause(); err != nil {
		t.Fatal(err)
	}
}

func TestExec(t *testing.T) {
	l := New(t, 2)
	h := l.Hosts()[1]
	mustSSH(t, l, h.Name, "echo via-ssh > /var/lib/nodeagent/x")
	out, err := h.Exec(t.Context(), "sh", "-c", "hostname; cat /var/lib/nodeagent/x; ip -4 -o addr show dev eth0")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || lines[0] != "host2" || lines[1] != "via-ssh" || !strings.Contains(lines[2], h.Addr) {
		t.Errorf("Exec output: %q", out)
	}
	if _, err := h.Exec(t.Context(), "false"); err == nil || !strings.Contains(err.Error(), "host2") {
		t.Errorf("failing Exec: %v", err)
	}
}

func TestAddHosts(t *testing.T) {
	l := New(t, 1)
	added, err := l.AddHosts(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 || added[1].Name != "host3" || len(l.Hosts()) != 3 {
		t.Fatalf("AddHosts: %v, hosts %d", added, len(l.Hosts()))
	}
	if got := mustSSH(t, l, "host1", "getent hosts host3"); !strings.HasPrefix(got, added[1].Addr) {
		t.Errorf("host1 resolves host3 as %q", got)
	}
	mustSSH(t, l, "host3", "true")
}

func TestInventory(t *testing.T) {
	l := New(t, 2)
	p := filepath.Join(l.Dir(), "inventory.ini")
	if err := l.WriteInventory(p, map[string]string{"agent_dir": "/var/lib/nodeagent"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	for _, h := range l.Hosts() {
		want := h.Name + " ansible_host=" + h.Addr + " ansible_user=root ansible_ssh_private_key_file=" + l.KeyFile() + "\n"
		if !strings.Contains(string(b), want) {
			t.Errorf("inventory lacks %q:\n%s", want, b)
		}
	}
	if !strings.Contains(string(b), "[all:vars]\nagent_dir=/var/lib/nodeagent\n") {
		t.Errorf("inventory lacks extra vars:\n%s", b)
	}
}

func TestWithMounts(t *testing.T) {
	t.Cleanup(func() { os.Remove("/var/lib/orch-lab-extra") }) // the mount point, made in the root namespace
	l := New(t, 2, WithMounts("/var/lib/orch-lab-extra"))
	mustSSH(t, l, "host1", "echo one > /var/lib/orch-lab-extra/f")
	if out, err := sshRun(t, l, "host2", nil, "cat /var/lib/orch-lab-extra/f"); err == nil {
		t.Errorf("host2 sees host1's extra directory: %s", out)
	}
	p, ok := l.Hosts()[0].Path("/var/lib/orch-lab-extra/f")
	if b, err := os.ReadFile(p); !ok || string(b) != "one\n" {
		t.Errorf("host1's extra directory in %s: %q, %v", p, b, err)
	}
}
