package playbooks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportAndIncludeTasks: import_tasks/include_tasks read another file's
// tasks (relative to the including file), apply when/vars/tags to each, and
// include_tasks with a loop runs them once per item with the loop variable.
func TestImportAndIncludeTasks(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	if err := os.MkdirAll(filepath.Join(h.dir, "tasks"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(h.dir, "tasks", "write.yml"), `- name: write one
  shell: echo {{ word }} >> {{ tmp }}/{{ inventory_hostname }}.out
- ansible.builtin.import_tasks: nested.yml
`)
	writeFile(t, filepath.Join(h.dir, "tasks", "nested.yml"), "- shell: echo nested-{{ word }} >> {{ tmp }}/{{ inventory_hostname }}.out\n")
	recap := h.run(`- hosts: all
  tasks:
    - import_tasks: tasks/write.yml
      vars: { word: imported }
    - include_tasks:
        file: tasks/write.yml
      vars: { word: "{{ item }}" }
      loop: "{{ ['a', 'b'] if inventory_hostname == 'h1' else ['c'] }}"
    - name: skipped on h2
      include_tasks: tasks/write.yml
      vars: { word: only-h1 }
      when: inventory_hostname == 'h1'
`)
	if got := h.file("h1.out"); got != "imported\nnested-imported\na\nnested-a\nb\nnested-b\nonly-h1\nnested-only-h1\n" {
		t.Errorf("h1.out = %q", got)
	}
	if got := h.file("h2.out"); got != "imported\nnested-imported\nc\nnested-c\n" {
		t.Errorf("h2.out = %q", got)
	}
	// ansible-playbook 2.14 on this playbook: h1 ok=11 changed=8, h2 ok=5 changed=4
	// skipped=1 (each include_tasks is a result: "included" per item, or skipped once).
	h.stats(recap, "h1", Stats{Ok: 11, Changed: 8})
	h.stats(recap, "h2", Stats{Ok: 5, Changed: 4, Skipped: 1})
}

// TestIncludeResultsAsAnsible: include_tasks and include_role are results of
// their own, as Ansible's dynamic includes: include_tasks counts ok
// ("included") per host and loop item, a false when counts one skipped for
// the include (not one per included task) and is evaluated once, at the
// include; include_role counts only when skipped; import_tasks and the old
// include count nothing. ansible-playbook 2.14 gives ok=13 changed=1 skipped=2 here
// (and runs the second task of cond.yml although the first set the flag).
func TestIncludeResultsAsAnsible(t *testing.T) {
	h := newHarness(t, "h1")
	writeFile(t, filepath.Join(h.dir, "inc.yml"), "- debug: {msg: inc}\n")
	writeFile(t, filepath.Join(h.dir, "cond.yml"), "- set_fact: {flag: true}\n- shell: echo ran > {{ tmp }}/cond\n")
	if err := os.MkdirAll(filepath.Join(h.dir, "roles", "r1", "tasks"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(h.dir, "roles", "r1", "tasks", "main.yml"), "- debug: {msg: r1}\n")
	recap := h.run(`- hosts: h1
  tasks:
    - include_tasks: inc.yml
    - include_tasks: inc.yml
      when: false
    - include_role: {name: r1}
    - include_role: {name: r1}
      when: false
    - import_tasks: inc.yml
    - include_tasks: "{{ 'inc.yml' }}"
    - include_tasks: inc.yml
      loop: [1, 2]
    - include_tasks: cond.yml
      when: flag is not defined
`)
	h.stats(recap, "h1", Stats{Ok: 13, Changed: 1, Skipped: 2})
	if h.file("cond") != "ran\n" {
		t.Errorf("the include's when was evaluated again inside it")
	}
}

// TestImportPlaybookAndIncludeVars: import_playbook adds the other file's
// plays (its vars applied), include_vars loads a vars file as facts, the
// action: form and FQCN names run modules.
func TestImportPlaybookAndIncludeVars(t *testing.T) {
	h := newHarness(t, "h1")
	writeFile(t, filepath.Join(h.dir, "other.yml"), `- hosts: all
  tasks:
    - action: shell echo {{ who }} > {{ tmp }}/other
`)
	if err := os.MkdirAll(filepath.Join(h.dir, "vars"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(h.dir, "vars", "v.yml"), "color: blue\nsizes: [1, 2]\n")
	h.run(`- import_playbook: other.yml
  vars: { who: imported }
- hosts: all
  tasks:
    - ansible.builtin.include_vars: v.yml
    - include_vars: { file: v.yml, name: bag }
    - action:
        module: ansible.builtin.copy
        content: "{{ color }} {{ sizes | sum }} {{ bag.color }}"
        dest: "{{ tmp }}/out"
`)
	if got := h.file("other"); got != "imported\n" {
		t.Errorf("other = %q", got)
	}
	if got := h.file("out"); got != "blue 3 blue" {
		t.Errorf("out = %q", got)
	}
}

func TestIncludeErrors(t *testing.T) {
	h := newHarness(t, "h1")
	writeFile(t, filepath.Join(h.dir, "bad.yml"), "- hosts: all\n  tasks:\n    - debug: msg={{ x | nofilter }}\n")
	writeFile(t, filepath.Join(h.dir, "loop.yml"), "- import_tasks: loop.yml\n")
	for src, want := range map[string]string{
		"- import_playbook: bad.yml\n":                              "bad.yml:3:14",
		"- hosts: all\n  tasks:\n    - import_tasks: missing.yml\n": "missing.yml",
		"- import_playbook: '{{ f }}.yml'\n":                        "templated playbook name",
		"- hosts: all\n  tasks:\n    - import_tasks: loop.yml\n":    "nested deeper than",
		"- hosts: all\n  tasks:\n    - action: {}\n":                "needs module",
	} {
		_, err := h.runErr(src)
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want a ParseError mentioning %q", src, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(h.dir, "ran")); err == nil {
		t.Error("something ran")
	}
}

// TestUndefinedNamesTaskAndFile: a template error on a host names the
// variable, the task and where the task is written (here in an imported file).
func TestUndefinedNamesTaskAndFile(t *testing.T) {
	h := newHarness(t, "h1")
	writeFile(t, filepath.Join(h.dir, "inc.yml"), "- name: uses it\n  debug: msg={{ nosuchvar.x }}\n- name: cond\n  debug: msg=x\n  when: other_missing > 1\n")
	recap := h.run("- hosts: all\n  tasks:\n    - import_tasks: inc.yml\n      ignore_errors: true\n")
	h.stats(recap, "h1", Stats{Ok: 2, Ignored: 2})
	for task, want := range map[string]string{
		"uses it": `inc.yml:1:3: task "uses it": debug: msg: undefined variable "nosuchvar"`,
		"cond":    `inc.yml:3:3: task "cond": condition "other_missing > 1": undefined variable "other_missing"`,
	} {
		e, ok := h.rec.results(task)["h1"]
		if !ok || !strings.Contains(e.Result.Msg, want) {
			t.Errorf("%s: %+v, want a message containing %q", task, e.Result, want)
		}
	}
}

// TestIncludedUnknownModuleFailsWhenRun: a file that include_tasks or
// include_role reads may use a module orch lacks (a role's
// setup-Archlinux.yml with pacman): as in Ansible, which loads included
// files when the include runs, the playbook runs and only a task that runs
// fails; an import with the same file is refused before anything runs.
func TestIncludedUnknownModuleFailsWhenRun(t *testing.T) {
	h := newHarness(t, "h1")
	writeFile(t, filepath.Join(h.dir, "arch.yml"), "- pacman: {name: git}\n")
	recap := h.run(`- hosts: h1
  tasks:
    - include_tasks: arch.yml
      when: false
    - shell: echo ran > {{ tmp }}/ran
    - include_tasks: arch.yml
`)
	h.stats(recap, "h1", Stats{Ok: 2, Changed: 1, Failed: 1, Skipped: 1})
	if h.file("ran") != "ran\n" {
		t.Error("the play did not run")
	}
	h.outputContains("unknown module (or unknown task keyword): pacman")
	_, err := h.runErr(`- hosts: h1
  tasks:
    - import_tasks: arch.yml
      when: false
`)
	if !errors.Is(err, ErrUnknownModule) {
		t.Errorf("import_tasks of an unknown module: %v", err)
	}
}

// TestIncludeVarsTemplatedWhenUsed: include_vars' values are templated when
// used, inside lists and mappings too (geerlingguy.apache's vars/apache-24.yml
// loops over items whose line is a template), while a registered output that
// looks like a template is never rendered; ansible-playbook 2.14 writes the
// same files.
func TestIncludeVarsTemplatedWhenUsed(t *testing.T) {
	h := newHarness(t, "h1")
	writeFile(t, filepath.Join(h.dir, "lv.yml"), "items_v: [{line: 'Listen {{ port }}'}]\n")
	h.run(`- hosts: h1
  vars: {port: 80}
  tasks:
    - include_vars: lv.yml
    - shell: echo "{{ item.line }}" >> {{ tmp }}/out
      with_items: "{{ items_v }}"
    - shell: printf '%s%s port }}' '{' '{'
      register: echoed
    - copy: {content: "{{ echoed.stdout }}", dest: "{{ tmp }}/raw"}
`)
	if got := h.file("out"); got != "Listen 80\n" {
		t.Errorf("out = %q", got)
	}
	if got := h.file("raw"); got != "{{ port }}" {
		t.Errorf("a registered value was templated again: %q", got)
	}
}
