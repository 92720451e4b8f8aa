package playbooks

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCopyIdempotentAndCheckMode(t *testing.T) {
	h := newHarness(t, "h1")
	writeFile(t, h.dir+"/src.txt", "from src\n")
	os.Mkdir(h.dir+"/templates", 0o755)
	writeFile(t, h.dir+"/templates/tpl.j2", "host={{ inventory_hostname }} n={{ items | join(',') }}\n")
	src := `
- hosts: all
  gather_facts: false
  vars:
    items: [1, 2]
  tasks:
    - name: content
      copy:
        content: "hello {{ inventory_hostname }}\n"
        dest: "{{ tmp }}/content.txt"
        mode: "0600"
    - name: src
      copy: src=src.txt dest={{ tmp }}/copied.txt
    - name: template
      template: src=tpl.j2 dest={{ tmp }}/rendered.txt mode=0640
    - name: dir
      file: path={{ tmp }}/d/e state=directory mode=0750
    - name: touch
      file: { path: "{{ tmp }}/d/e/f", state: touch }
    - name: link
      file: { path: "{{ tmp }}/l", src: "{{ tmp }}/content.txt", state: link }
    - name: absent
      file: { path: "{{ tmp }}/gone", state: absent }
`
	writeFile(t, h.dir+"/gone", "x")

	check := h.run(src, func(o *Options) { o.Check = true })
	if fileExists(h.dir+"/content.txt") || fileExists(h.dir+"/d") || !fileExists(h.dir+"/gone") {
		t.Fatal("check mode changed files")
	}
	h.stats(check, "h1", Stats{Ok: 7, Changed: 7})
	h.outputContains("changed: [h1] => would change: write " + h.dir + "/content.txt (9 bytes)")

	first := h.run(src)
	h.stats(first, "h1", Stats{Ok: 7, Changed: 7})
	if got := h.file("content.txt"); got != "hello h1\n" {
		t.Errorf("content.txt = %q", got)
	}
	if got := h.file("rendered.txt"); got != "host=h1 n=1,2\n" {
		t.Errorf("rendered.txt = %q", got)
	}
	if got := h.file("copied.txt"); got != "from src\n" {
		t.Errorf("copied.txt = %q", got)
	}
	assertMode(t, h.dir+"/content.txt", 0o600)
	assertMode(t, h.dir+"/rendered.txt", 0o640)
	assertMode(t, h.dir+"/d/e", 0o750)
	if target, _ := os.Readlink(h.dir + "/l"); target != h.dir+"/content.txt" || fileExists(h.dir+"/gone") {
		t.Errorf("link -> %q, gone exists=%v", target, fileExists(h.dir+"/gone"))
	}

	second := h.run(src)
	// Only touch changes every time.
	h.stats(second, "h1", Stats{Ok: 7, Changed: 1})

	os.Chmod(h.dir+"/content.txt", 0o644)
	h.run(src)
	assertMode(t, h.dir+"/content.txt", 0o600)
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Errorf("stat: %v", err)
		return
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s mode %o, want %o", filepath.Base(path), got, want)
	}
}

func TestCopyDiff(t *testing.T) {
	h := newHarness(t, "h1")
	writeFile(t, h.dir+"/f", "old\n")
	h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - copy: { content: "new\n", dest: "{{ tmp }}/f" }
`, func(o *Options) {
		o.Diff = true
		o.Reporter = MultiReporter(h.rec, NewTextReporter(&h.out, TextOptions{Diff: true}))
	})
	h.outputContains("-old\n+new\n")
}

func TestWaitFor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	h := newHarness(t, "h1")
	h.hosts[0].Vars["ansible_host"] = "127.0.0.1"
	h.hosts[0].Vars["open_port"] = port
	h.hosts[0].Vars["closed_port"] = closedPort
	writeFile(t, h.dir+"/present", "")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - wait_for: port={{ open_port }} timeout=5
    - wait_for: { port: "{{ closed_port }}", state: stopped, timeout: 5 }
    - wait_for: { path: "{{ tmp }}/present", timeout: 5 }
    - wait_for: { path: "{{ tmp }}/absent", state: absent }
    - name: times out
      wait_for: { port: "{{ closed_port }}", timeout: 0.2, sleep: 0.05 }
      ignore_errors: true
`)
	h.stats(recap, "h1", Stats{Ok: 5, Ignored: 1})
	h.outputContains("timeout after 200ms waiting for 127.0.0.1:")
}

func TestMiscModules(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - ping:
      register: p
    - pause: seconds=0
    - set_fact: a=1 b="{{ [1, 2] }}"
    - assert:
        that: ["p.ping == 'pong'", "a == '1'", "b == [1, 2]"]
        success_msg: fine
    - assert: { that: "1 == 2", fail_msg: "math is broken" }
      ignore_errors: true
    - debug:
    - fail:
      ignore_errors: true
`)
	h.stats(recap, "h1", Stats{Ok: 7, Ignored: 2})
	h.outputContains("ok: [h1] => fine", "failed: [h1] => math is broken", "ok: [h1] => Hello world!", "Failed as requested from task")
}

func TestModuleArgErrors(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - copy: { dest: /tmp/x, bogus: 1 }
`)
	h.stats(recap, "h1", Stats{Failed: 1})
	h.outputContains("copy does not take bogus")
}

func TestCustomModuleCheckGate(t *testing.T) {
	h := newHarness(t, "h1")
	applied := 0
	h.modules["thing"] = ModuleFunc(func(ctx context.Context, tc *TaskContext) (Result, error) {
		name, err := tc.Args.Required("name")
		if err != nil {
			return Result{}, err
		}
		return Result{}, tc.Change("create thing "+name, func() error { applied++; return nil })
	})
	src := "- hosts: all\n  tasks:\n    - thing: { name: \"{{ inventory_hostname }}\" }\n"
	h.run(src, func(o *Options) { o.Check = true })
	if applied != 0 {
		t.Fatal("check mode applied a change")
	}
	h.outputContains("changed: [h1] => would change: create thing h1")
	h.run(src)
	if applied != 1 {
		t.Fatalf("applied %d times", applied)
	}
	if !strings.Contains(h.out.String(), "changed: [h1]\n") {
		t.Errorf("output:\n%s", h.out.String())
	}
}

// TestFileOwnershipValidateManaged: copy/template/file set owner and group
// (and only change them when they differ), validate refuses a bad file
// before it replaces dest, templates see ansible_managed.
func TestFileOwnershipValidateManaged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	h := newHarness(t, "h1")
	writeFile(t, filepath.Join(h.dir, "t.j2"), "# {{ ansible_managed }}\nx={{ inventory_hostname }}\n")
	src := `- hosts: all
  tasks:
    - template: { src: t.j2, dest: "{{ tmp }}/out", owner: nobody, group: nogroup, mode: "0640" }
    - file: { path: "{{ tmp }}/d", state: directory, owner: nobody }
    - copy: { content: "bad\n", dest: "{{ tmp }}/v", validate: "grep -q good %s" }
      ignore_errors: true
    - copy: { content: "good\n", dest: "{{ tmp }}/v", validate: "grep -q good %s" }
`
	recap := h.run(src)
	h.stats(recap, "h1", Stats{Ok: 4, Changed: 3, Ignored: 1})
	if got := h.file("out"); got != "# Ansible managed\nx=h1\n" {
		t.Errorf("out = %q", got)
	}
	for _, p := range []string{"out", "d"} {
		st, err := os.Stat(filepath.Join(h.dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
			t.Errorf("%s owned by %d, want nobody", p, uid)
		}
	}
	if got := h.file("v"); got != "good\n" {
		t.Errorf("v = %q", got)
	}
	again := h.run(src)
	h.stats(again, "h1", Stats{Ok: 4, Changed: 0, Ignored: 1})
}

// TestCommandCheckMode: in check mode command, shell and raw are skipped as
// Ansible's are ("Command would have run…"), registering rc None and empty
// output, so conditions on the result are false, not errors, and until
// does not retry; check_mode: false still runs them.
func TestCommandCheckMode(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`- hosts: all
  tasks:
    - shell: echo ran > {{ tmp }}/ran
      register: r
      until: r.rc == 0
      retries: 3
      delay: 5
    - shell: echo rc-zero > {{ tmp }}/when
      when: r.rc == 0 or r.stdout.find('x') != -1
    - command: echo real
      check_mode: false
      register: real
      failed_when: real.rc != 0
    - debug: { msg: "{{ r.rc is none }} {{ real.stdout }}" }
`, func(o *Options) { o.Check = true })
	h.stats(recap, "h1", Stats{Ok: 2, Changed: 1, Skipped: 2})
	if h.file("ran") != "" || h.file("when") != "" {
		t.Error("a command ran in check mode")
	}
	h.outputContains("ok: [h1] => true real")
	var msgs []string
	for _, e := range h.rec.events {
		if e.Kind == EventHostResult && e.Status == StatusSkipped {
			msgs = append(msgs, e.Result.Msg)
		}
	}
	if len(msgs) == 0 || msgs[0] != "Command would have run if not in check mode" {
		t.Errorf("skipped results say %q", msgs)
	}
}
