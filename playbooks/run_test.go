package playbooks

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRunCommandsRegisterDebug(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	recap := h.run(`
- name: basics
  hosts: all
  gather_facts: false
  tasks:
    - name: echo
      command: echo hello {{ inventory_hostname }}
      register: out
    - name: shell pipe
      shell: echo abc | tr a x
      register: piped
    - name: show
      debug:
        msg: "{{ out.stdout }} / {{ piped.stdout }} / {{ out.stdout_lines | length }} / {{ out.rc }}"
    - name: show var
      debug: var=out.rc
`)
	h.stats(recap, "h1", Stats{Ok: 4, Changed: 2})
	h.stats(recap, "h2", Stats{Ok: 4, Changed: 2})
	res := h.rec.results("show")
	if got := res["h2"].Result.Msg; got != "hello h2 / xbc / 1 / 0" {
		t.Errorf("debug msg = %q", got)
	}
	if got := h.rec.results("show var")["h1"].Result.Msg; got != "out.rc: 0" {
		t.Errorf("debug var = %q", got)
	}
	h.outputContains("PLAY [basics] ***", "TASK [echo] ***", "changed: [h1]", "ok: [h2] => hello h2 / xbc / 1 / 0", "PLAY RECAP ***",
		"h1                         : ok=4    changed=2    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0")
	if ExitCode(recap, nil) != ExitOK {
		t.Errorf("exit code %d", ExitCode(recap, nil))
	}
}

func TestCommandOptions(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - name: creates missing
      command: touch {{ tmp }}/made creates={{ tmp }}/made
    - name: creates present
      command: touch {{ tmp }}/never creates={{ tmp }}/made
    - name: removes absent
      command: touch {{ tmp }}/never removes={{ tmp }}/nope
    - name: chdir and stdin
      shell: cat > here.txt; pwd
      args:
        chdir: "{{ tmp }}"
        stdin: from stdin
      register: r
    - assert:
        that:
          - r.stdout == tmp
          - lookup_ok is not defined
    - name: argv
      command:
        argv: [printf, "%s|", "a b", "c"]
      register: argv
    - assert: { that: "argv.stdout == 'a b|c|'" }
    - name: failing
      command: sh -c "echo oops >&2; exit 3"
      register: bad
      ignore_errors: true
    - assert:
        that: ["bad.rc == 3", "bad is failed", "bad.stderr == 'oops'"]
`)
	h.stats(recap, "h1", Stats{Ok: 9, Changed: 4, Ignored: 1})
	if h.file("never") != "" || h.file("here.txt") != "from stdin\n" {
		t.Errorf("creates/removes/stdin misbehaved: never=%q here=%q", h.file("never"), h.file("here.txt"))
	}
	h.outputContains("ok: [h1] => skipped, since", "failed: [h1] => non-zero return code 3: oops", "...ignoring")
}

func TestWhenAndSkip(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	h.hosts[1].Vars["role"] = "db"
	recap := h.run(`
- hosts: all
  gather_facts: false
  vars:
    enabled: true
  tasks:
    - name: only db
      debug: msg=db
      when: role is defined and role == "db"
    - name: list when
      debug: msg=both
      when:
        - enabled
        - inventory_hostname in ['h1', 'h2']
    - name: templated when
      debug: msg=never
      when: "{{ not enabled }}"
`)
	h.stats(recap, "h1", Stats{Ok: 1, Skipped: 2})
	h.stats(recap, "h2", Stats{Ok: 2, Skipped: 1})
	h.outputContains("skipping: [h1]")
}

func TestUndefinedVariableFailsTask(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - debug: msg="{{ nosuchvar }}"
    - debug: msg=unreachable
`)
	h.stats(recap, "h1", Stats{Failed: 1})
	res := h.rec.results("debug")["h1"]
	if !strings.Contains(res.Result.Msg, `"nosuchvar"`) {
		t.Errorf("error should name the variable: %q", res.Result.Msg)
	}
	if ExitCode(recap, nil) != ExitFailed {
		t.Errorf("exit code = %d, want 2", ExitCode(recap, nil))
	}
}

func TestLoops(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`
- hosts: all
  gather_facts: false
  vars:
    pkgs: [a, b, c]
  tasks:
    - name: loop
      shell: echo {{ pkg }}-{{ idx }}
      loop: "{{ pkgs }}"
      loop_control:
        loop_var: pkg
        index_var: idx
        label: "pkg {{ pkg }}"
      when: pkg != 'b'
      register: looped
    - name: with_items flattens
      set_fact:
        flat: "{{ (flat | default([])) + [item] }}"
      with_items:
        - [1, 2]
        - 3
    - assert:
        that:
          - looped.results | length == 3
          - looped.results[0].stdout == 'a-0'
          - looped.results[1] is skipped
          - looped.results[2].pkg == 'c'
          - looped is changed
          - flat == [1, 2, 3]
    - name: empty loop
      debug: msg=x
      loop: []
`)
	h.stats(recap, "h1", Stats{Ok: 3, Changed: 1, Skipped: 1})
	h.outputContains("changed: [h1] => (item=pkg a)", "skipping: [h1] => (item=pkg b)")
}

func TestUntilRetries(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - name: count
      shell: echo x >> {{ tmp }}/count; wc -l < {{ tmp }}/count
      register: c
      until: c.stdout | int >= 3
      retries: 5
      delay: 0
    - assert: { that: ["c.attempts == 3", "c.stdout | int == 3"] }
    - name: never
      command: "false"
      register: n
      until: n.rc == 0
      retries: 2
      delay: 0
      ignore_errors: true
    - assert: { that: ["n.attempts == 3", "n is failed"] }
`)
	h.stats(recap, "h1", Stats{Ok: 4, Changed: 2, Ignored: 1})
}

func TestFactsPrecedenceAndMagicVars(t *testing.T) {
	h := newHarness(t, "h1", "h2", "h3")
	h.groups = map[string][]string{"web": {"h1", "h2"}, "db": {"h3"}}
	for _, host := range h.hosts {
		host.Vars["level"] = "inventory"
		host.Vars["inv_only"] = "inv"
		host.Vars["derived"] = "{{ inv_only }}-{{ play_var }}"
	}
	writeFile(t, h.dir+"/vars.yml", "from_file: file\nlevel: file\n")
	recap := h.run(`
- hosts: web
  gather_facts: false
  vars:
    level: play
    play_var: p
    chained: "{{ chained2 }}!"
    chained2: "{{ level }}"
  vars_files: [vars.yml]
  tasks:
    - assert:
        that:
          - level == 'file'
          - derived == 'inv-p'
          - chained == 'file!'
          - play_hosts == ['h1', 'h2']
          - groups.db == ['h3']
          - groups.all | length == 3
          - group_names == ['web']
          - hostvars.h3.level == 'inventory'
          - not ansible_check_mode
          - from_file == 'file'
    - set_fact:
        level: fact
        mine: "{{ inventory_hostname }}-fact"
        over: fact
    - assert:
        that:
          - level == 'fact'
          - chained == 'fact!'
          - over == 'extra'
          - hostvars['h2'].mine == 'h2-fact'
          - hostvars[inventory_hostname].level == 'fact'
- hosts: h1
  gather_facts: false
  tasks:
    - assert: { that: ["mine == 'h1-fact'", "hostvars.h3.inventory_hostname == 'h3'"] }
`, func(o *Options) { o.ExtraVars = map[string]any{"over": "extra"} })
	h.stats(recap, "h1", Stats{Ok: 4})
	h.stats(recap, "h2", Stats{Ok: 3})
}

func TestRunOnceAndDelegate(t *testing.T) {
	h := newHarness(t, "h1", "h2", "h3")
	h.modules["whoami"] = ModuleFunc(func(ctx context.Context, tc *TaskContext) (Result, error) {
		c, err := tc.Conn()
		if err != nil {
			return Result{}, err
		}
		return Result{Data: map[string]any{"conn": c.(*localConn).host, "for": tc.Host}}, nil
	})
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - name: once
      shell: echo {{ inventory_hostname }} >> {{ tmp }}/once
      register: o
      run_once: true
    - name: delegated
      whoami:
      delegate_to: "{{ groups.all | last }}"
      register: w
    - assert:
        that:
          - o.stdout == ''
          - w.conn == 'h3'
          - w.for == inventory_hostname
`)
	if got := h.file("once"); got != "h1\n" {
		t.Errorf("run_once ran on %q", got)
	}
	h.stats(recap, "h1", Stats{Ok: 3, Changed: 1})
	h.stats(recap, "h2", Stats{Ok: 2})
	h.outputContains("ok: [h1 -> h3]")
}

func TestFailedAndUnreachableHostsDropOut(t *testing.T) {
	h := newHarness(t, "h1", "h2", "h3")
	h.conn.down["h3"] = true
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - command: "true"
    - fail: msg=boom
      when: inventory_hostname == 'h2'
    - name: after
      command: "true"
- hosts: all
  gather_facts: false
  tasks:
    - name: second play
      debug: msg=x
`)
	h.stats(recap, "h1", Stats{Ok: 3, Changed: 2, Skipped: 1})
	h.stats(recap, "h2", Stats{Ok: 1, Changed: 1, Failed: 1})
	h.stats(recap, "h3", Stats{Unreachable: 1})
	if ExitCode(recap, nil) != ExitUnreachable {
		t.Errorf("exit code %d, want 4", ExitCode(recap, nil))
	}
	if got := h.rec.results("second play"); len(got) != 1 {
		t.Errorf("second play ran on %v, want only h1", got)
	}
	h.outputContains("unreachable: [h3] => ", "failed: [h2] => boom")
}

func TestChangedWhenFailedWhen(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - command: echo ok
      register: r
      changed_when: false
    - command: sh -c "exit 1"
      failed_when: false
    - command: echo error
      register: e
      failed_when: "'error' in e.stdout"
      ignore_errors: yes
    - assert: { that: ["r is not changed", "e is failed"] }
`)
	h.stats(recap, "h1", Stats{Ok: 4, Changed: 2, Ignored: 1})
}

func TestBecome(t *testing.T) {
	h := newHarness(t, "h1")
	h.run(`
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - command: "true"
    - command: "true"
      become: false
`)
	if got := h.conn.log.become; !reflect.DeepEqual(got, []bool{true, false}) {
		t.Errorf("become flags = %v", got)
	}
}

func TestNoLog(t *testing.T) {
	h := newHarness(t, "h1")
	h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - debug: msg="secret {{ 's3cr3t' }}"
      no_log: true
    - command: echo s3cr3t
      no_log: true
      loop: [1]
`)
	if strings.Contains(h.out.String(), "s3cr3t") {
		t.Errorf("secret leaked:\n%s", h.out.String())
	}
	h.outputContains("hidden due to the fact that 'no_log: true'")
}

func TestContextCancel(t *testing.T) {
	h := newHarness(t, "h1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pb, err := Parse("x.yml", []byte("- hosts: all\n  tasks:\n    - command: sleep 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, pb, h.options())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
