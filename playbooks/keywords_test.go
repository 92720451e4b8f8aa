package playbooks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestLocalConnection: a play on localhost that is not in the inventory, a
// task delegated to localhost and a host with ansible_connection=local run
// on this machine without asking the Connector, as Ansible's implicit
// localhost does.
func TestLocalConnection(t *testing.T) {
	h := newHarness(t, "h1", "loc")
	h.hosts[1].Vars["ansible_connection"] = "local"
	h.run(`- hosts: localhost
  tasks:
    - shell: echo implicit > ` + h.dir + `/implicit
- hosts: all
  tasks:
    - shell: echo {{ inventory_hostname }} >> {{ tmp }}/delegated
      delegate_to: localhost
    - local_action: shell echo {{ inventory_hostname }} >> {{ tmp }}/local_action
    - shell: echo here > {{ tmp }}/{{ inventory_hostname }}.ran
`)
	if got := h.file("implicit"); got != "implicit\n" {
		t.Errorf("implicit localhost wrote %q", got)
	}
	for _, f := range []string{"delegated", "local_action"} {
		lines := strings.Fields(h.file(f))
		slices.Sort(lines)
		if !slices.Equal(lines, []string{"h1", "loc"}) {
			t.Errorf("%s = %q", f, h.file(f))
		}
	}
	if h.file("loc.ran") != "here\n" || h.file("h1.ran") != "here\n" {
		t.Errorf("tasks did not run on both hosts")
	}
	if !slices.Equal(h.conn.log.connects, []string{"h1"}) {
		t.Errorf("Connector asked for %v, want only h1 (localhost and loc are local)", h.conn.log.connects)
	}
}

// TestRemoteUserBecomeEnvironment: remote_user reaches the Connector as
// ansible_user (unless the host sets ansible_user), become_user/su and
// environment wrap the commands the modules run.
func TestRemoteUserBecomeEnvironment(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	h.hosts[1].Vars["ansible_user"] = "inventory-user"
	h.run(`- hosts: all
  remote_user: deploy
  environment: { GREETING: "hello {{ inventory_hostname }}" }
  tasks:
    - shell: echo "$GREETING" > {{ tmp }}/{{ inventory_hostname }}.env
    - shell: "true"
      become: true
      become_user: bob
      ignore_errors: true
    - shell: "true"
      become: true
      become_method: su
      become_user: alice
      environment: { X: "1" }
      ignore_errors: true
`)
	if got := h.file("h1.env"); got != "hello h1\n" {
		t.Errorf("h1.env = %q", got)
	}
	if !slices.Equal(h.conn.log.users, []string{"h1=deploy", "h2=inventory-user"}) && !slices.Equal(h.conn.log.users, []string{"h2=inventory-user", "h1=deploy"}) {
		t.Errorf("connector users = %v", h.conn.log.users)
	}
	var sudo, su bool
	for i, r := range h.conn.log.runs {
		if strings.Contains(r, "sudo -n -H -u bob -- sh -c") && !h.conn.log.become[i] {
			sudo = true
		}
		if strings.Contains(r, "su -s /bin/sh alice -c") && strings.Contains(r, "export X=1") && h.conn.log.become[i] {
			su = true
		}
	}
	if !sudo || !su {
		t.Errorf("become_user commands not wrapped (sudo %v, su %v): %q", sudo, su, h.conn.log.runs)
	}
}

// TestBecomeUserPushOwnsFiles: a file copy pushes with become_user is the
// become user's (and their group's), as ansible-playbook 2.14 leaves it
// (checked with become_user nobody over a local connection, into a
// directory nobody may write: 65534:65534); an unchanged file is not
// touched.
func TestBecomeUserPushOwnsFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	h := newHarness(t, "h1")
	writeFile(t, filepath.Join(h.dir, "src.txt"), "hello\n")
	for dir, mode := range map[string]os.FileMode{h.dir: 0o777, filepath.Dir(h.dir): 0o755} {
		if err := os.Chmod(dir, mode); err != nil { // nobody reads and writes there
			t.Fatal(err)
		}
	}
	play := `- hosts: h1
  tasks:
    - copy: {src: src.txt, dest: "{{ tmp }}/pushed.txt"}
      become: true
      become_user: nobody
`
	h.stats(h.run(play), "h1", Stats{Ok: 1, Changed: 1})
	owner := func(name string) string {
		st, err := os.Stat(filepath.Join(h.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		return fmt.Sprintf("%d:%d", sys.Uid, sys.Gid)
	}
	if got := owner("pushed.txt"); got != "65534:65534" {
		t.Errorf("pushed.txt is %s, want nobody's (65534:65534)", got)
	}
	h.out.Reset()
	h.stats(h.run(play), "h1", Stats{Ok: 1})
}

// TestPlayAndTaskKeywords: order, throttle, per-task check_mode, templated
// keywords, module_defaults by short and FQCN name, async with poll 0 and
// async_status, meta clear_facts and end_batch.
func TestPlayAndTaskKeywords(t *testing.T) {
	h := newHarness(t, "b", "a", "c")
	recap := h.run(`- hosts: all
  order: sorted
  serial: "{{ batch | default(3) }}"
  any_errors_fatal: "{{ false }}"
  module_defaults:
    ansible.builtin.shell: { chdir: ` + h.dir + ` }
  tasks:
    - shell: echo {{ inventory_hostname }} >> order
      throttle: 1
    - shell: echo real > {{ inventory_hostname }}.real
      check_mode: false
    - shell: echo fake > {{ inventory_hostname }}.fake
      check_mode: true
    - shell: exit 3
      ignore_errors: "{{ inventory_hostname == 'a' }}"
      when: inventory_hostname == 'a'
    - shell: sleep 0.2; echo done > {{ inventory_hostname }}.async
      async: 10
      poll: 0
      register: job
    - async_status: { jid: "{{ job.ansible_job_id }}" }
      register: st
      until: st.finished == 1
      retries: 50
      delay: 0.05
    - set_fact: { f: 1 }
    - meta: clear_facts
    - debug: { msg: "{{ f | default('cleared') }}" }
      register: d
    - shell: echo {{ d.msg }} > {{ inventory_hostname }}.cleared
`)
	if got := h.file("order"); got != "a\nb\nc\n" {
		t.Errorf("order = %q, want sorted", got)
	}
	for _, n := range []string{"a", "b", "c"} {
		if h.file(n+".real") != "real\n" || h.file(n+".fake") != "" || h.file(n+".async") != "done\n" || h.file(n+".cleared") != "cleared\n" {
			t.Errorf("%s: real %q fake %q async %q cleared %q", n, h.file(n+".real"), h.file(n+".fake"), h.file(n+".async"), h.file(n+".cleared"))
		}
	}
	if s := recap.Hosts["a"]; s == nil || s.Ignored != 1 || s.Failed != 0 {
		t.Errorf("a: %+v, want the templated ignore_errors to hold", s)
	}

	h2 := newHarness(t, "h1", "h2", "h3")
	h2.run(`- hosts: all
  serial: 1
  tasks:
    - meta: end_batch
      when: inventory_hostname == 'h2'
    - shell: echo {{ inventory_hostname }} >> {{ tmp }}/ran
`)
	if got := h2.file("ran"); got != "h1\nh3\n" {
		t.Errorf("end_batch: ran = %q, want h1 and h3", got)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "b.fake")); err == nil {
		t.Error("check_mode: true ran the command")
	}
}

// TestGroupByAddHost: group_by makes groups later plays target and
// `groups` shows; add_host adds a host (here a local one) to later plays.
func TestGroupByAddHost(t *testing.T) {
	h := newHarness(t, "h1", "h2", "h3")
	h.hosts[0].Vars["role"] = "web"
	h.hosts[1].Vars["role"] = "db"
	h.hosts[2].Vars["role"] = "web"
	h.run(`- hosts: all
  tasks:
    - group_by: { key: "kind_{{ role }}", parents: [grouped] }
    - add_host: { name: extra, groups: [added], ansible_connection: local, color: blue, tmp: "{{ tmp }}" }
      run_once: true
    - shell: echo {{ groups['kind_web'] | join(',') }} > {{ tmp }}/{{ inventory_hostname }}.groups
- hosts: kind_web:&grouped
  tasks:
    - shell: echo {{ inventory_hostname }} >> {{ tmp }}/web
- hosts: added
  tasks:
    - shell: echo {{ color }} > {{ tmp }}/extra
`)
	if got := h.file("h2.groups"); got != "h1,h3\n" {
		t.Errorf("groups['kind_web'] on h2 = %q", got)
	}
	if got := strings.Fields(h.file("web")); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"h1", "h3"}) {
		t.Errorf("kind_web:&grouped ran on %q", got)
	}
	if got := h.file("extra"); got != "blue\n" {
		t.Errorf("added host wrote %q\n%s", got, h.out.String())
	}
}

// TestArgsTemplateAndLookups: module arguments given as one template
// yielding a mapping (kubespray's `helm: "{{ defaults | combine(item) }}"`),
// with_X loops through their lookups, query('varnames'), ansible_version.
func TestArgsTemplateAndLookups(t *testing.T) {
	h := newHarness(t, "h1")
	writeTree(t, h.dir, map[string]string{"files/a.conf": "a", "files/b.conf": "b", "vars/Debian.yml": "fam: deb\n"})
	h.run(`- hosts: all
  vars:
    base: { dest: "{{ tmp }}/out" }
    prefix_one: 1
    prefix_two: 2
  tasks:
    - copy: "{{ base | combine({'content': 'x=' ~ ansible_version.major}) }}"
    - shell: echo {{ item.key }}={{ item.value }} >> {{ tmp }}/dict
      with_dict: { b: 2, a: 1 }
    - shell: echo {{ item | basename }} >> {{ tmp }}/glob
      with_fileglob: "*.conf"
    - shell: echo {{ item.0 }}{{ item.1 }} >> {{ tmp }}/nested
      with_nested: [[x, y], [1, 2]]
    - include_vars: "{{ item }}"
      with_first_found: [RedHat.yml, Debian.yml]
    - shell: echo {{ fam }} {{ query('varnames', '^prefix_') | sort | join(',') }} > {{ tmp }}/names
`)
	for f, want := range map[string]string{"out": "x=2", "dict": "a=1\nb=2\n", "glob": "a.conf\nb.conf\n",
		"nested": "x1\nx2\ny1\ny2\n", "names": "deb prefix_one,prefix_two\n"} {
		if got := h.file(f); got != want {
			t.Errorf("%s = %q, want %q\n%s", f, got, want, h.out.String())
		}
	}
}

// TestVarsPrompt: without a terminal (no Prompter) nothing is asked, as
// ansible-playbook 2.14 does with stdin not a terminal: its warning, each
// variable its default or none; an extra var is never asked.
func TestVarsPrompt(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`- hosts: all
  vars_prompt:
    - { name: who, prompt: "Who?", default: world }
    - { name: pw, prompt: "Password?", private: true }
    - { name: given, prompt: "Given?", default: no }
  tasks:
    - shell: echo {{ who }} {{ 'none' if pw is none else pw }} {{ given }} > {{ tmp }}/who
`, func(o *Options) { o.ExtraVars = map[string]any{"given": "yes", "tmp": h.dir} })
	h.stats(recap, "h1", Stats{Ok: 1, Changed: 1})
	if h.file("who") != "world none yes\n" {
		t.Errorf("who = %q", h.file("who"))
	}
	h.outputContains("[WARNING]: Not prompting as we are not in interactive mode")
}

// scriptedPrompter answers prompts from a list and records the questions.
type scriptedPrompter struct {
	answers []string
	asked   []string
}

func (s *scriptedPrompter) Prompt(msg string, private bool) (string, error) {
	s.asked = append(s.asked, fmt.Sprintf("%s|%v", msg, private))
	if len(s.answers) == 0 {
		return "", errors.New("no more answers")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}

// TestVarsPromptAsks: with a terminal each variable not given as an extra
// var is asked with Ansible's "Prompt [default]: " (private by default), an
// empty answer takes the default, confirm asks again until both match,
// encrypt hashes the answer (password_hash), and the prompt is templated
// with the play's vars.
func TestVarsPromptAsks(t *testing.T) {
	h := newHarness(t, "h1")
	p := &scriptedPrompter{answers: []string{"", "bob", "s1", "s2", "pw", "pw", "x", "skipped"}}
	recap := h.run(`- hosts: all
  vars: {thing: Colour}
  vars_prompt:
    - { name: who, prompt: "Who?", default: world, private: false }
    - { name: name, prompt: "{{ thing }}?" }
    - { name: pw, prompt: "Password", confirm: true, encrypt: sha512_crypt, salt: saltsalt }
    - { name: bare }
    - { name: given, prompt: "Given?" }
  tasks:
    - copy: {content: "{{ who }} {{ name }} {{ pw }} {{ bare }} {{ given }}", dest: "{{ tmp }}/out"}
`, func(o *Options) {
		o.Prompter = p
		o.ExtraVars = map[string]any{"given": "yes", "tmp": h.dir}
	})
	h.stats(recap, "h1", Stats{Ok: 1, Changed: 1})
	// crypt(3) of "pw" with that salt (python3: crypt.crypt('pw', '$6$saltsalt')).
	want := "world bob $6$saltsalt$pauPrmdmG4BTE9h2HPmywiw152IFch6BJCEsaY6D.PLTfpV8sqvXwWdyfsgVgozkYH9B80bAip/08R2BPH2xk/ x yes"
	if got := h.file("out"); got != want {
		t.Errorf("out = %q, want %q", got, want)
	}
	asked := strings.Join(p.asked, "\n")
	wantAsked := "Who? [world]: |false\nColour?: |true\nPassword: |true\nconfirm Password: |true\nPassword: |true\nconfirm Password: |true\ninput for bare: |true"
	if asked != wantAsked {
		t.Errorf("asked:\n%s\nwant:\n%s", asked, wantAsked)
	}
	h.outputContains("VALUES ENTERED DO NOT MATCH")
}

// TestStrategyFree: with strategy: free a fast host goes through its tasks
// without waiting for a slow one (with linear, h2's second task would wait
// for h1's first); the recap is the same.
func TestStrategyFree(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	recap := h.run(`- hosts: all
  strategy: free
  tasks:
    - shell: "{{ 'sleep 2;' if inventory_hostname == 'h1' else '' }} echo {{ inventory_hostname }}-a >> {{ tmp }}/order"
    - group_by: { key: "g_{{ inventory_hostname }}" }
    - shell: echo {{ inventory_hostname }}-b-{{ groups['g_' ~ inventory_hostname] | join(',') }} >> {{ tmp }}/order
      notify: done
  handlers:
    - name: done
      shell: echo {{ inventory_hostname }}-handler >> {{ tmp }}/handlers
`)
	lines := strings.Fields(h.file("order"))
	if len(lines) != 4 || lines[0] != "h2-a" || lines[1] != "h2-b-h2" || lines[2] != "h1-a" || lines[3] != "h1-b-h1" {
		t.Errorf("order = %q, want h2 to finish before h1's slow task", lines)
	}
	for _, n := range []string{"h1", "h2"} {
		h.stats(recap, n, Stats{Ok: 4, Changed: 4})
	}
	if got := strings.Fields(h.file("handlers")); len(got) != 2 {
		t.Errorf("handlers ran %q", got)
	}
}

// TestStrategyFreeHandlersPerHost: with strategy: free each host runs its
// handlers when it finishes the section, without waiting for a slow host;
// ansible-playbook 2.14 (two local hosts, this playbook) writes h2-a,
// h2-handler, h1-a, h1-handler.
func TestStrategyFreeHandlersPerHost(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	recap := h.run(`- hosts: all
  strategy: free
  tasks:
    - shell: "{{ 'sleep 2;' if inventory_hostname == 'h1' else '' }} echo {{ inventory_hostname }}-a >> {{ tmp }}/order"
      notify: done
  handlers:
    - name: done
      shell: echo {{ inventory_hostname }}-handler >> {{ tmp }}/order
`)
	if got := strings.Fields(h.file("order")); strings.Join(got, " ") != "h2-a h2-handler h1-a h1-handler" {
		t.Errorf("order = %q, want h2's handler before h1's slow task ends (as Ansible)", got)
	}
	for _, n := range []string{"h1", "h2"} {
		h.stats(recap, n, Stats{Ok: 2, Changed: 2})
	}
}

// TestTaskErrorKeywords: task-level any_errors_fatal stops the play when
// that task fails; ignore_unreachable keeps an unreachable host in the
// play; delegate_facts gives set facts to the delegate; timeout stops a
// module that runs too long.
func TestTaskErrorKeywords(t *testing.T) {
	h := newHarness(t, "h1", "h2", "down")
	h.conn.down["down"] = true
	recap := h.run(`- hosts: all
  tasks:
    - shell: "true"
      ignore_unreachable: true
    - set_fact: { seen_by: "{{ inventory_hostname }}" }
      delegate_to: h2
      delegate_facts: true
      when: inventory_hostname == 'h1'
    - shell: exec sleep 5
      timeout: 1
      when: inventory_hostname == 'h1'
      ignore_errors: true
      register: slow
    - shell: echo {{ hostvars['h2'].seen_by | default('none') }} {{ seen_by | default('none') }} > {{ tmp }}/{{ inventory_hostname }}
      when: inventory_hostname != 'down'
    - shell: "exit {{ 1 if inventory_hostname == 'h2' else 0 }}"
      any_errors_fatal: true
      when: inventory_hostname != 'down'
    - shell: echo after > {{ tmp }}/after
`)
	if got := h.file("h1"); got != "h1 none\n" {
		t.Errorf("h1 wrote %q, want the fact on h2 only", got)
	}
	if h.file("after") != "" {
		t.Error("the play went on after an any_errors_fatal task failed")
	}
	if !recap.Aborted {
		t.Error("recap not aborted")
	}
	if s := recap.Hosts["down"]; s == nil || s.Unreachable != 1 || s.Skipped < 2 {
		t.Errorf("down: %+v", s)
	}
	h.outputContains("did not finish within its timeout (1s)")
}

// TestPlayTaskKeywords: play-level ignore_errors, no_log and run_once reach
// every task; force_handlers runs a failed host's handlers.
func TestPlayTaskKeywords(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	h.run(`- hosts: all
  ignore_errors: true
  tasks:
    - shell: "exit 1"
    - shell: echo {{ inventory_hostname }} >> {{ tmp }}/ran
- hosts: all
  run_once: true
  no_log: true
  tasks:
    - shell: echo {{ inventory_hostname }} secret >> {{ tmp }}/once
- hosts: all
  force_handlers: true
  tasks:
    - shell: "true"
      notify: handle
    - fail: { msg: stop }
      when: inventory_hostname == 'h1'
  handlers:
    - name: handle
      shell: echo {{ inventory_hostname }} >> {{ tmp }}/forced
`)
	if got := strings.Fields(h.file("ran")); len(got) != 2 {
		t.Errorf("ran = %q: play ignore_errors did not keep the hosts", got)
	}
	if got := h.file("once"); got != "h1 secret\n" {
		t.Errorf("once = %q", got)
	}
	if strings.Contains(h.out.String(), "secret") {
		t.Error("no_log play printed a result")
	}
	if got := strings.Fields(h.file("forced")); len(got) != 2 {
		t.Errorf("forced = %q, want both hosts' handler (h1 failed)", got)
	}
}
