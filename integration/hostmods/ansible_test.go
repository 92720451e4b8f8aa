package hostmods

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/lab"
	"orch/playbooks"
)

// systemPlaybook prepares a fresh Debian host the way roles do: packages, a group and a
// user, a unit, kernel parameters, cron, a mount, config files.
const systemPlaybook = `
- hosts: all
  gather_facts: false
  tasks:
    - name: python for ansible
      raw: command -v python3 >/dev/null || (apt-get -q update >/dev/null && apt-get install -y -q python3 >/dev/null)
      changed_when: false
- hosts: all
  tasks:
    - name: packages
      apt: {name: [hello, cron, locales, iptables], update_cache: true, cache_valid_time: 3600}
    - name: package module
      package: {name: hello, state: present}
    - name: group
      group: {name: appg, gid: 3100}
    - name: user
      user: {name: appu, uid: 3100, group: appg, groups: [users], shell: /bin/bash, comment: App}
    - name: config line
      lineinfile: {path: /etc/app.conf, line: 'listen = 80', create: true, mode: '0640'}
    - name: config block
      blockinfile: {path: /etc/app.conf, block: "a = 1\nb = 2"}
    - name: ini
      ini_file: {path: /etc/app.ini, section: main, option: port, value: '8080'}
    - name: replace
      replace: {path: /etc/app.conf, regexp: '^listen = 80$', replace: 'listen = 8080'}
    - name: unit file
      copy: {dest: /lib/systemd/system/app.service, content: "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"}
    - name: service
      systemd: {name: app, state: started, enabled: true, daemon_reload: true}
    - name: sysctl
      sysctl: {name: net.ipv4.ip_forward, value: '1', sysctl_file: /etc/sysctl.d/90-app.conf}
    - name: cron
      cron: {name: app cleanup, minute: '7', job: /bin/true}
    - name: mount
      mount: {path: /mnt/app, src: tmpfs, fstype: tmpfs, opts: size=1m, state: mounted}
    - name: stat
      stat: {path: /etc/app.conf}
      register: st
    - name: assert
      assert: {that: [st.stat.exists, "st.stat.mode == '0640'"]}
    - name: timezone
      community.general.timezone: {name: Europe/Paris}
    - name: locale
      community.general.locale_gen: {name: fr_FR.UTF-8}
    - name: service facts
      service_facts:
    - name: package facts
      package_facts: {manager: auto}
    - name: hold
      dpkg_selections: {name: hello, selection: hold}
    - name: getent
      getent: {database: passwd, key: appu}
    - name: find
      find: {paths: /etc, patterns: 'app.*'}
      register: found
    - name: facts used
      assert: {that: ["ansible_facts.services['app.service'].state == 'running'", "'hello' in ansible_facts.packages", "getent_passwd.appu[1] == '3100'", "found.matched == 2"]}
    - name: firewall
      iptables: {chain: INPUT, protocol: tcp, destination_port: '8080', jump: ACCEPT, comment: app}
`

// TestDebianAgainstAnsible runs the same playbook twice with ansible-playbook on one fresh
// Debian host and twice with orch's engine and modules on another: every task's ok/changed
// /failed and the recap must be the same (the measure of "runs like Ansible").
func TestDebianAgainstAnsible(t *testing.T) {
	ansible, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("ansible-playbook not installed (apt-get install ansible): nothing to compare with")
	}
	e := newEnv(t, 2, lab.WithOS(lab.OSDebian))
	path := filepath.Join(t.TempDir(), "site.yml")
	if err := os.WriteFile(path, []byte(systemPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		want := runAnsible(t, e, ansible, path, "host1")
		got := runOrch(t, e, path, "host2")
		t.Logf("run %d, ansible-playbook:\n%s", run, strings.Join(want, "\n"))
		// The playbook is not idempotent on purpose (replace undoes lineinfile's line, as real
		// playbooks do): the second run changes those two tasks again, on both sides.
		if changes := strings.Count(strings.Join(want, "\n"), ": changed"); len(want) != 26 || changes != map[int]int{1: 16, 2: 2}[run] {
			t.Fatalf("run %d: ansible-playbook reported %d task results (want 26), %d changed", run, len(want), changes)
		}
		if strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("run %d: task results differ\nansible:\n%s\norch:\n%s", run, strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
	}
}

// runAnsible runs the playbook on host with ansible-playbook's json callback and returns
// "task: status" lines.
func runAnsible(t *testing.T, e *env, ansible, path, host string) []string {
	t.Helper()
	h := e.lab.Host(host)
	inv := filepath.Join(t.TempDir(), "inventory.ini")
	line := fmt.Sprintf("%s ansible_host=%s ansible_user=root ansible_ssh_private_key_file=%s ansible_ssh_common_args='-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes' ansible_python_interpreter=/usr/bin/python3\n",
		host, h.Addr, e.lab.KeyFile(), e.lab.KnownHostsFile())
	if err := os.WriteFile(inv, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ansible, "-i", inv, path)
	cmd.Env = append(os.Environ(), "ANSIBLE_STDOUT_CALLBACK=json", "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0")
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("ansible-playbook: %v", err)
	}
	var doc struct {
		Plays []struct {
			Tasks []struct {
				Task  struct{ Name string }
				Hosts map[string]struct {
					Changed bool
					Failed  bool
					Skipped bool
					Msg     any
				}
			}
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("ansible-playbook's json: %v\n%s", err, out)
	}
	var lines []string
	for _, p := range doc.Plays {
		for _, task := range p.Tasks {
			r, ok := task.Hosts[host]
			if !ok {
				continue
			}
			lines = append(lines, task.Task.Name+": "+status(r.Changed, r.Failed, r.Skipped))
		}
	}
	return lines
}

func status(changed, failed, skipped bool) string {
	switch {
	case failed:
		return "failed"
	case skipped:
		return "skipped"
	case changed:
		return "changed"
	}
	return "ok"
}

// runOrch runs the playbook on host with orch's engine and registry over SSH.
func runOrch(t *testing.T, e *env, path, host string) []string {
	t.Helper()
	pb, err := playbooks.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	rep := playbooks.ReporterFunc(func(ev playbooks.Event) {
		if ev.Kind == playbooks.EventHostResult && ev.Host == host {
			lines = append(lines, fmt.Sprintf("%s: %s", ev.Task, string(ev.Status)))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h := e.lab.Host(host)
	_, err = playbooks.Run(ctx, pb, playbooks.Options{
		Hosts:     []playbooks.Host{{Name: host, Vars: map[string]any{"ansible_host": h.Addr}}},
		Connector: e.conn, Modules: orchRegistry(), Reporter: rep,
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}
