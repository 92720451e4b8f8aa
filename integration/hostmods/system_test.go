package hostmods

import (
	"strings"
	"testing"

	"orch/integration/lab"
	"orch/playbooks"
)

// TestDebianSystemModules runs the modules that read or set system-wide state on a fresh
// Debian 12 host booted by systemd: timezone through timedatectl and hwclock, locale_gen,
// service_facts from systemd's units, package_facts from dpkg, dpkg_selections; the
// changing ones converge (--check changes nothing, one run changes, a second is ok).
func TestDebianSystemModules(t *testing.T) {
	e := newEnv(t, 1, lab.WithOS(lab.OSDebian))
	t.Run("timezone", func(t *testing.T) {
		first := e.converge(t, "timezone: {name: Europe/Paris}", e.ok("[ \"$(timedatectl show -p Timezone --value)\" = Europe/Paris ]"))
		diff, _ := first.res.Data["diff"].(map[string]any)
		if after, _ := diff["after"].(map[string]any); after["name"] != "Europe/Paris" {
			t.Errorf("diff: %v", first.res.Data)
		}
		// hwclock is tried in --check only: a lab host shares this machine's kernel, and the
		// first settimeofday(tz) of a kernel's life (timedatectl set-local-rtc) warps the
		// shared system clock by the zone's offset.
		if c := e.play(t, "community.general.timezone: {hwclock: local}", true); c.status != playbooks.StatusChanged {
			t.Errorf("hwclock local in --check: %s\n%s", c.status, c.out)
		}
		if o := e.play(t, "timezone: {name: Mars/Olympus}", false); o.status != playbooks.StatusFailed || !strings.Contains(o.res.Msg, "not available") {
			t.Errorf("unknown zone: %s %q", o.status, o.res.Msg)
		}
	})
	t.Run("service_facts", func(t *testing.T) {
		o := e.play(t, "service_facts:", false)
		facts, _ := o.res.Data["ansible_facts"].(map[string]any)
		services, _ := facts["services"].(map[string]any)
		ssh, _ := services["ssh.service"].(map[string]any)
		if o.status != playbooks.StatusOK || ssh["state"] != "running" || ssh["status"] != "enabled" || ssh["source"] != "systemd" {
			t.Fatalf("ssh.service: %s %v\n%s", o.status, ssh, o.out)
		}
	})
	t.Run("package_facts and dpkg_selections", func(t *testing.T) {
		o := e.play(t, "package_facts:", false)
		facts, _ := o.res.Data["ansible_facts"].(map[string]any)
		pkgs, _ := facts["packages"].(map[string]any)
		if l, _ := pkgs["openssh-server"].([]any); o.status != playbooks.StatusOK || len(l) != 1 {
			t.Fatalf("openssh-server: %s %v", o.status, pkgs["openssh-server"])
		}
		e.converge(t, "dpkg_selections: {name: openssh-server, selection: hold}", e.ok("dpkg --get-selections openssh-server | grep -q hold"))
	})
	t.Run("iptables", func(t *testing.T) {
		if _, ok := e.sh("host1", "command -v iptables || DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables"); !ok {
			t.Skip("iptables cannot be installed on the lab host")
		}
		rule := "iptables -C INPUT -p tcp -m multiport --dports 80,443 -m conntrack --ctstate NEW -j ACCEPT -m comment --comment web"
		first := e.converge(t, "iptables: {chain: INPUT, protocol: tcp, destination_ports: ['80', '443'], ctstate: [NEW], jump: ACCEPT, comment: web}", e.ok(rule))
		if first.res.Data["rule"] != "-p tcp -j ACCEPT -m multiport --dports 80,443 -m conntrack --ctstate NEW -m comment --comment web" {
			t.Errorf("rule: %q", first.res.Data["rule"])
		}
		e.converge(t, "ansible.builtin.iptables: {chain: INPUT, protocol: tcp, destination_ports: ['80', '443'], ctstate: [NEW], jump: ACCEPT, comment: web, state: absent}",
			func() bool { return !e.ok(rule)() })
		e.converge(t, "iptables: {chain: FORWARD, policy: DROP}", e.ok("iptables -L FORWARD -n | head -1 | grep -q 'policy DROP'"))
		e.converge(t, "iptables: {chain: ORCH, jump: RETURN, chain_management: true}", e.ok("iptables -C ORCH -j RETURN"))
	})
	t.Run("locale_gen", func(t *testing.T) {
		if _, ok := e.sh("host1", "command -v locale-gen || DEBIAN_FRONTEND=noninteractive apt-get install -y -q locales"); !ok {
			t.Skip("locales cannot be installed on the lab host")
		}
		e.converge(t, "locale_gen: {name: fr_FR.UTF-8}", e.ok("locale -a | grep -qx fr_FR.utf8"))
		e.converge(t, "locale_gen: {name: fr_FR.UTF-8, state: absent}", e.ok("! locale -a | grep -qx fr_FR.utf8"))
		if o := e.play(t, "locale_gen: {name: xx_YY.UTF-8}", false); o.status != playbooks.StatusFailed {
			t.Errorf("unknown locale: %s", o.status)
		}
	})
	t.Run("reboot", func(t *testing.T) {
		initStart := func() string { out, _ := e.sh("host1", "cut -d' ' -f22 /proc/1/stat"); return out }
		before := initStart()
		if c := e.play(t, "reboot:", true); c.status != playbooks.StatusChanged || initStart() != before {
			t.Fatalf("--check: %s, init %s -> %s", c.status, before, initStart())
		}
		o := e.play(t, "reboot: {reboot_timeout: 120}", false)
		if o.status != playbooks.StatusChanged || o.res.Data["rebooted"] != true {
			t.Fatalf("reboot: %s %v\n%s", o.status, o.res.Data, o.out)
		}
		if after := initStart(); after == before || after == "" {
			t.Errorf("init started at %s before and %q after: not rebooted", before, after)
		}
		if o := e.play(t, "stat: {path: /}", false); o.status != playbooks.StatusOK {
			t.Errorf("a task after the reboot: %s\n%s", o.status, o.out)
		}
	})
}
