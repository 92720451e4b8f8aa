package playbooks

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// writeTree writes files (path → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, content)
	}
}

// TestRoles: roles: entries run their dependencies (once), tasks with the
// role's defaults and vars at Ansible's precedence, templates from the
// role's templates/, and their handlers; include_role runs tasks_from.
func TestRoles(t *testing.T) {
	h := newHarness(t, "h1")
	h.hosts[0].Vars["inv_wins"] = "inventory"
	writeTree(t, h.dir, map[string]string{
		"roles/common/tasks/main.yml":    "- shell: echo common-{{ common_word }} >> {{ tmp }}/out\n",
		"roles/common/defaults/main.yml": "common_word: default\n",
		"roles/web/meta/main.yml":        "galaxy_info: {author: x}\ndependencies:\n  - common\n  - role: common\n",
		"roles/web/defaults/main.yml":    "inv_wins: role-default\nplay_wins: role-default\nrole_var: role-default\nport: 80\n",
		"roles/web/vars/main.yml":        "role_var: role-vars\n",
		"roles/web/tasks/main.yml": `- name: render
  template: { src: page.j2, dest: "{{ tmp }}/page" }
  notify: web restarted
- shell: echo {{ inv_wins }} {{ play_wins }} {{ role_var }} {{ port }} {{ role_name }} >> {{ tmp }}/out
- include_tasks: extra.yml
`,
		"roles/web/tasks/extra.yml":   "- shell: echo extra-{{ port }} >> {{ tmp }}/out\n",
		"roles/web/tasks/other.yml":   "- shell: echo other-{{ port }}-{{ only_here }} >> {{ tmp }}/out\n",
		"roles/web/templates/page.j2": "port={{ port }}\n",
		"roles/web/handlers/main.yml": "- name: web restarted\n  shell: echo handler >> {{ tmp }}/out\n",
		"roles/web/vars/alt.yml":      "only_here: alt\n",
	})
	h.run(`- hosts: all
  vars: { play_wins: play, role_var: play }
  roles:
    - web
    - { role: web, port_: 1, tags: [again], vars: { port: 8080 } }
  tasks:
    - include_role:
        name: web
        tasks_from: other
        vars_from: alt
      vars: { port: 9 }
    - shell: echo after-{{ port }}-{{ only_here | default('private') }} >> {{ tmp }}/out
`)
	want := "common-default\n" +
		"inventory play role-vars 80 web\nextra-80\n" +
		"inventory play role-vars 8080 web\nextra-8080\n" +
		"other-9-alt\nafter-80-private\nhandler\n"
	if got := h.file("out"); got != want {
		t.Errorf("out = %q\nwant  %q\noutput:\n%s", got, want, h.out.String())
	}
	if got := h.file("page"); got != "port=8080\n" {
		t.Errorf("page = %q", got)
	}
}

// TestRoleNotFound: a missing role is a parse error naming the role and
// where it was looked for.
func TestRoleNotFound(t *testing.T) {
	h := newHarness(t, "h1")
	_, err := h.runErr("- hosts: all\n  roles: [nowhere]\n")
	if !errors.Is(err, ErrRoleNotFound) || !errors.Is(err, ErrParse) {
		t.Fatalf("err = %v, want ErrRoleNotFound", err)
	}
}

// TestRolesPathFromConfig: roles are found through ansible.cfg's roles_path
// next to the playbook, and ANSIBLE_ROLES_PATH wins over it.
func TestRolesPathFromConfig(t *testing.T) {
	h := newHarness(t, "h1")
	writeTree(t, h.dir, map[string]string{
		"ansible.cfg":             "[defaults]\nroles_path = ./shared:/nonexistent\n",
		"shared/r/tasks/main.yml": "- shell: echo cfg >> {{ tmp }}/out\n",
		"env/r/tasks/main.yml":    "- shell: echo env >> {{ tmp }}/out\n",
	})
	h.run("- hosts: all\n  roles: [r]\n")
	t.Setenv("ANSIBLE_ROLES_PATH", filepath.Join(h.dir, "env"))
	h.run("- hosts: all\n  roles: [r]\n")
	if got := h.file("out"); got != "cfg\nenv\n" {
		t.Errorf("out = %q", got)
	}
}

// TestDynamicInclude: include_tasks with a templated file name reads the
// file each host names (in the role's tasks/ first), with a loop too.
func TestDynamicInclude(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	h.hosts[0].Vars["family"] = "Debian"
	h.hosts[1].Vars["family"] = "RedHat"
	writeTree(t, h.dir, map[string]string{
		"roles/os/tasks/main.yml":         "- include_tasks: \"setup-{{ family }}.yml\"\n- include_tasks: \"{{ item }}.yml\"\n  loop: [one, two]\n  when: family == 'Debian'\n",
		"roles/os/tasks/setup-Debian.yml": "- shell: echo deb >> {{ tmp }}/{{ inventory_hostname }}\n",
		"roles/os/tasks/setup-RedHat.yml": "- shell: echo rh >> {{ tmp }}/{{ inventory_hostname }}\n",
		"roles/os/tasks/one.yml":          "- shell: echo one-{{ item }} >> {{ tmp }}/{{ inventory_hostname }}\n",
		"roles/os/tasks/two.yml":          "- shell: echo two-{{ item }} >> {{ tmp }}/{{ inventory_hostname }}\n",
	})
	h.run("- hosts: all\n  roles: [os]\n")
	if got := h.file("h1"); got != "deb\none-one\ntwo-two\n" {
		t.Errorf("h1 = %q", got)
	}
	if got := h.file("h2"); got != "rh\n" {
		t.Errorf("h2 = %q", got)
	}
}

// TestTemplatedIncludeRoleHandlers: a role included by a templated name
// brings its handlers, notified by its tasks by name or as "ROLE : NAME",
// as ansible-playbook 2.14 runs them (once each, after the tasks).
func TestTemplatedIncludeRoleHandlers(t *testing.T) {
	h := newHarness(t, "h1")
	for path, text := range map[string]string{
		"roles/web/tasks/main.yml":    "- shell: echo task >> {{ tmp }}/log\n  notify: [restart web, 'web : reload web']\n",
		"roles/web/handlers/main.yml": "- name: restart web\n  shell: echo restart >> {{ tmp }}/log\n- name: reload web\n  shell: echo reload >> {{ tmp }}/log\n",
	} {
		if err := os.MkdirAll(filepath.Join(h.dir, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(h.dir, path), text)
	}
	recap := h.run(`- hosts: h1
  vars: {which: web}
  tasks:
    - include_role: {name: "{{ which }}"}
    - shell: echo after >> {{ tmp }}/log
`)
	if got := h.file("log"); got != "task\nafter\nrestart\nreload\n" {
		t.Errorf("log = %q", got)
	}
	h.stats(recap, "h1", Stats{Ok: 4, Changed: 4})
}
