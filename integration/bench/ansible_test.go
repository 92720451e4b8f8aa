package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"orch/integration/lab"
)

// ansible runs ansible-playbook on a lab with ControlPersist and pipelining on, its state
// (control sockets, local temp, ANSIBLE_HOME) in a directory of its own.
type ansible struct {
	dir string
	env []string
}

// ansibleVersion is "ansible-core X.Y.Z", or an error when ansible-playbook is missing.
func ansibleVersion() (string, error) {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		return "", fmt.Errorf("ansible-playbook %w (apt-get install ansible-core; scripts/bench-peers.sh does)", errSkipped)
	}
	out, err := exec.Command("ansible-playbook", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("ansible-playbook --version: %w", err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if i := strings.Index(first, "[core "); i >= 0 {
		return "ansible-core " + strings.TrimSuffix(strings.TrimSpace(first[i+6:]), "]"), nil
	}
	return strings.TrimSpace(first), nil
}

// newAnsible writes ansible.cfg and the lab's inventory into a fresh directory.
func newAnsible(b testing.TB, l *lab.Lab) *ansible {
	b.Helper()
	dir, err := os.MkdirTemp("", "orch-bench-ansible-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	if err := l.WriteInventory(filepath.Join(dir, "inventory.ini"), map[string]string{"ansible_python_interpreter": "/usr/bin/python3"}); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`[defaults]
inventory = %[1]s/inventory.ini
forks = 64
gathering = explicit
host_key_checking = True
retry_files_enabled = False
local_tmp = %[1]s/local
remote_tmp = /tmp/.ansible-bench

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=120s -o BatchMode=yes -o UserKnownHostsFile=%[2]s -o StrictHostKeyChecking=yes
control_path_dir = %[1]s/cp
`, dir, l.KnownHostsFile())
	if err := os.WriteFile(filepath.Join(dir, "ansible.cfg"), []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	a := &ansible{dir: dir, env: []string{"ANSIBLE_CONFIG=" + filepath.Join(dir, "ansible.cfg"),
		"ANSIBLE_HOME=" + filepath.Join(dir, "home"), "ANSIBLE_NOCOLOR=1"}}
	b.Cleanup(a.closeMasters)
	return a
}

// play writes a playbook and runs it.
func (a *ansible) play(ctx context.Context, name, playbook string) run {
	path := filepath.Join(a.dir, name)
	if err := os.WriteFile(path, []byte(playbook), 0o644); err != nil {
		return run{err: err}
	}
	return timed(ctx, a.env, a.dir, "ansible-playbook", path)
}

// closeMasters ends the ControlPersist masters this run left (ssh -O exit on each socket).
func (a *ansible) closeMasters() {
	socks, _ := filepath.Glob(filepath.Join(a.dir, "cp", "*"))
	for _, s := range socks {
		_ = exec.Command("ssh", "-o", "ControlPath="+s, "-O", "exit", "x").Run()
	}
}

// ansibleForm is the Ansible equivalent of what `orch up` does before clustering: push the
// agent binary, start it detached unless it runs, wait until it answers on its socket.
func ansibleForm(agent string) string {
	return `- hosts: all
  gather_facts: false
  vars:
    d: /var/lib/nodeagent
  tasks:
    - name: agent directory
      ansible.builtin.file: {path: "{{ d }}/bin", state: directory, mode: "0755"}
    - name: push the agent
      ansible.builtin.copy: {src: "` + agent + `", dest: "{{ d }}/bin/nodeagent", mode: "0755"}
    - name: start the agent detached
      ansible.builtin.shell: |
        if [ -s {{ d }}/nodeagent.pid ] && kill -0 "$(cat {{ d }}/nodeagent.pid)" 2>/dev/null; then echo running; exit 0; fi
        mkdir -p {{ d }}/logs
        setsid {{ d }}/bin/nodeagent daemon --dir {{ d }} >>{{ d }}/logs/nodeagent.log 2>&1 </dev/null &
        echo $! > {{ d }}/nodeagent.pid
        echo started
      register: start
      changed_when: "'started' in start.stdout"
    - name: wait for the agent
      ansible.builtin.command: "{{ d }}/bin/nodeagent --dir {{ d }} waitready --timeout 30"
      changed_when: false
`
}

// noopPlaybook is a play of n `command: true` tasks, for orch and Ansible alike.
func noopPlaybook(n int) string {
	var b strings.Builder
	b.WriteString("- hosts: all\n  gather_facts: false\n  tasks:\n")
	for i := range n {
		fmt.Fprintf(&b, "    - name: noop %d\n      command: /bin/true\n", i)
	}
	return b.String()
}
