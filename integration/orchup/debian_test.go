package orchup

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/lab"
	"orch/internal/wait"
	"orch/nodeagent/api"
)

// debianVars are the cluster-wide settings of the real-host scenario: a btrfs pool on a loop
// file and a managed bridge (LXD's defaults: an IPv4 subnet chosen once, NAT), the default profile on
// both.
const debianVars = `storage_pools:
  - {name: default, driver: btrfs, config: {size: 1GiB}}
networks:
  - {name: orchbr0, type: bridge}
profiles:
  - name: default
    devices:
      root: {path: /, pool: default, type: disk}
      eth0: {name: eth0, network: orchbr0, type: nic}
`

// TestDebianHosts is the real-server scenario on fresh Debian 12 hosts booted by systemd
// with none of LXC, dnsmasq or nftables installed: orch up installs what the cluster needs
// (and nothing on a re-run), the agent is a systemd unit logging to the journal, four
// instances are launched with and without boot.autostart, a host reboots cleanly and comes back ONLINE with its btrfs pool
// mounted from its loop file, its bridge and the instance that was running (the one stopped by its user stays stopped), and an agent
// killed with SIGKILL is restarted by systemd.
func TestDebianHosts(t *testing.T) {
	needContainers(t)
	e := newEnv(t, 3, lab.WithOS(lab.OSDebian))
	if err := os.MkdirAll(filepath.Join(e.dir, "group_vars"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "group_vars", "all.yml"), []byte(debianVars), 0o644); err != nil {
		t.Fatal(err)
	}
	img := busyboxImage(t)
	h1 := e.lab.Host("host1")
	if _, err := h1.Exec(t.Context(), "sh", "-c", "command -v lxc-start || command -v dnsmasq"); err == nil {
		t.Fatal("a fresh Debian host already has LXC or dnsmasq")
	}

	if r := e.orch("up", "--no-install"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "dnsmasq-base (dnsmasq, for DHCP on managed bridges)") {
		t.Fatalf("up --no-install: exit %d, want a refusal naming dnsmasq-base:\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.mustUp()
	for _, h := range e.lab.Hosts() {
		if out, err := h.Exec(t.Context(), "dpkg-query", "-W", "-f=${Status} ", "lxc", "dnsmasq-base", "nftables", "xz-utils", "btrfs-progs"); err != nil ||
			strings.Count(string(out), "install ok installed") != 5 {
			t.Errorf("%s: packages after orch up: %s %v", h.Name, out, err)
		}
	}
	if r := e.mustUp(); !strings.Contains(r.stdout, "nothing to install") || !strings.Contains(r.stdout, "Converged: nothing changed.") {
		t.Errorf("re-run of up is not a no-op:\n%s", r.stdout)
	}
	unit := "nodeagent@var-lib-nodeagent.service"
	if out, err := h1.Exec(t.Context(), "systemctl", "is-enabled", unit); err != nil || strings.TrimSpace(string(out)) != "enabled" {
		t.Fatalf("%s on host1: %s %v", unit, out, err)
	}
	if out, _ := h1.Exec(t.Context(), "journalctl", "-u", unit, "--no-pager", "-o", "cat"); !strings.Contains(string(out), "daemon ready") {
		t.Errorf("journalctl -u %s lacks the agent's log:\n%s", unit, out)
	}

	mustRun(t, e, "image", "import", img, "--alias", "busybox")
	// As in LXD: c1 (boot.autostart=true) starts at boot although its user stopped it; c2
	// (no key) comes back because it was running; c3 (boot.autostart=false) stays stopped
	// although it was running; c4 (no key) stays stopped because its user stopped it.
	mustRun(t, e, "launch", "busybox", "c1", "--target", "host1", "-c", "boot.autostart=true")
	mustRun(t, e, "launch", "busybox", "c2", "--target", "host1")
	mustRun(t, e, "launch", "busybox", "c3", "--target", "host1", "-c", "boot.autostart=false")
	mustRun(t, e, "launch", "busybox", "c4", "--target", "host1")
	mustRun(t, e, "stop", "c1", "c4", "--force")
	lease := waitInstance(t, e, "c2", func(in api.Instance) bool { return len(in.IPv4) > 0 })
	if r := e.orch("launch", "busybox", "c5", "-c", "volatile.last_state.power=RUNNING"); r.code == 0 || !strings.Contains(r.stderr, "volatile") {
		t.Errorf("launch with a volatile key: exit %d, want a refusal naming it: %s", r.code, r.stderr)
	}

	if err := h1.Reboot(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.waitMembers("host1 ONLINE after its reboot", allOnline)
	// The member answers (ONLINE) before it has brought its pools and bridges up again.
	wait.For(t, 60*time.Second, "host1's btrfs pool mounted from its loop file after the reboot", func() error {
		out, err := h1.Exec(t.Context(), "findmnt", "-n", "-t", "btrfs", "-o", "SOURCE", "/var/lib/nodeagent/storage-pools/default")
		if err != nil || !strings.HasPrefix(string(out), "/dev/loop") {
			return fmt.Errorf("findmnt: %q %v", out, err)
		}
		return nil
	})
	wait.For(t, 60*time.Second, "host1's bridge NAT after the reboot", func() error {
		out, err := h1.Exec(t.Context(), "nft", "list", "table", "ip", "orch_orchbr0")
		if err != nil || !strings.Contains(string(out), "masquerade") {
			return fmt.Errorf("nft: %s %v", out, err)
		}
		return nil
	})
	after := waitInstance(t, e, "c2", func(in api.Instance) bool {
		return in.Status == api.InstanceRunning && len(in.IPv4) > 0 && in.PID != lease.PID
	})
	t.Logf("c2 before the reboot: pid %d %v; after: pid %d %v", lease.PID, lease.IPv4, after.PID, after.IPv4)
	waitInstance(t, e, "c1", func(in api.Instance) bool { return in.Status == api.InstanceRunning && len(in.IPv4) > 0 })
	wait.For(t, 60*time.Second, "host1's agent deciding which instances to start", func() error {
		out, _ := h1.Exec(t.Context(), "journalctl", "-b", "-u", unit, "--no-pager", "-o", "cat")
		if !strings.Contains(string(out), "autostart done") {
			return fmt.Errorf("no 'autostart done' in this boot's journal")
		}
		return nil
	})
	for _, name := range []string{"c3", "c4"} {
		if in := waitInstance(t, e, name, func(api.Instance) bool { return true }); in.Status != api.InstanceStopped {
			t.Errorf("%s after the reboot: %s, want Stopped", name, in.Status)
		}
	}

	h2 := e.lab.Host("host2")
	pid := mainPID(t, h2, unit)
	if _, err := h2.Exec(t.Context(), "kill", "-9", pid); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "systemd restarting the killed agent on host2", func() error {
		if now := mainPID(t, h2, unit); now == "0" || now == pid {
			return fmt.Errorf("MainPID %s", now)
		}
		return nil
	})
	e.waitMembers("host2 ONLINE after its agent was killed", allOnline)

	t.Run("upgrade through systemd", func(t *testing.T) {
		agentB := buildAgentB(t)
		if r := e.orch("upgrade", "--agent", agentB); r.code != 0 {
			t.Fatalf("upgrade exited %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		ms := e.waitMembers("every member ONLINE on 0.9.0", func(ms []api.ClusterMember) bool {
			for _, m := range ms {
				if m.Version != "0.9.0" {
					return false
				}
			}
			return allOnline(ms)
		})
		if now := mainPID(t, h2, unit); now == "0" {
			t.Errorf("host2's unit runs no agent after the upgrade (members %+v)", ms)
		}
	})
	t.Run("reset", func(t *testing.T) { checkReset(t, e, unit) })
}

// checkReset: `orch reset --limit host3` removes host3 from the cluster and its unit; a
// reset that would leave the cluster without quorum is refused; `orch reset --purge` of
// every host takes the whole cluster away with the agent directories.
func checkReset(t *testing.T, e *env, unit string) {
	h1, h2, h3 := e.lab.Host("host1"), e.lab.Host("host2"), e.lab.Host("host3")
	if r := e.orch("reset", "--limit", "host3", "--yes"); r.code != 0 {
		t.Fatalf("reset host3 exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ms := e.waitMembers("host3 gone", func(ms []api.ClusterMember) bool { return len(ms) == 2 && allOnline(ms) })
	t.Logf("after reset of host3: %d members", len(ms))
	if out, err := h3.Exec(t.Context(), "systemctl", "is-enabled", unit); err == nil {
		t.Errorf("host3's unit still enabled: %s", out)
	}
	if err := h2.Kill(); err != nil {
		t.Fatal(err)
	}
	r := e.orch("reset", "--limit", "host1", "--yes")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "--force") {
		t.Errorf("reset of host1 with host2 down: exit %d, want a refusal pointing to --force:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if out, err := h1.Exec(t.Context(), "systemctl", "is-active", unit); err != nil {
		t.Errorf("the refused reset stopped host1's agent: %s %v", out, err)
	}
	if err := h2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.waitMembers("host2 back", func(ms []api.ClusterMember) bool { return len(ms) == 2 && allOnline(ms) })
	if r := e.orch("reset", "--purge", "--yes"); r.code != 0 {
		t.Fatalf("reset --purge exited %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, h := range e.lab.Hosts() {
		left := `for f in /var/lib/nodeagent /etc/systemd/system/nodeagent@.service; do [ -e $f ] && echo $f; done
pgrep -ax nodeagent; ip -br link show orchbr0 2>/dev/null; true`
		if out, err := h.Exec(t.Context(), "sh", "-c", left); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("%s after reset --purge still has: %s %v", h.Name, out, err)
		}
	}
}

func mustRun(t *testing.T, e *env, args ...string) string {
	t.Helper()
	r := e.orch(args...)
	if r.code != 0 {
		t.Fatalf("orch %v exited %d: %s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// waitInstance waits until orch list shows the instance meeting cond.
func waitInstance(t *testing.T, e *env, name string, cond func(api.Instance) bool) api.Instance {
	t.Helper()
	var got api.Instance
	wait.For(t, 60*time.Second, "instance "+name, func() error {
		var list []api.Instance
		r := e.orch("list", "--format", "json")
		if r.code != 0 {
			return fmt.Errorf("orch list: %s", r.stderr)
		}
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			return err
		}
		for _, in := range list {
			if in.Name == name {
				got = in
				if cond(in) {
					return nil
				}
				return fmt.Errorf("%+v", in)
			}
		}
		return fmt.Errorf("no instance %s in %v", name, list)
	})
	return got
}

// mainPID is the unit's main PID on the host ("0" when it runs none).
func mainPID(t *testing.T, h *lab.Host, unit string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), "systemctl", "show", "-p", "MainPID", "--value", unit)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
