package playbooks

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestHandlers(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - name: change on h1 only
      command: "true"
      changed_when: inventory_hostname == 'h1'
      notify: [second, first]
    - name: again
      command: "true"
      notify: first
      when: inventory_hostname == 'h1'
    - name: no change
      command: "true"
      changed_when: false
      notify: never
    - meta: flush_handlers
    - name: after flush
      shell: echo task >> {{ tmp }}/order-{{ inventory_hostname }}
      notify: topic
  handlers:
    - name: first
      shell: echo first >> {{ tmp }}/order-{{ inventory_hostname }}
    - name: second
      shell: echo second >> {{ tmp }}/order-{{ inventory_hostname }}
      notify: third
    - name: never
      shell: echo never >> {{ tmp }}/order-{{ inventory_hostname }}
    - name: third
      shell: echo third >> {{ tmp }}/order-{{ inventory_hostname }}
    - name: listener
      shell: echo listener >> {{ tmp }}/order-{{ inventory_hostname }}
      listen: topic
`)
	if got := h.file("order-h1"); got != "first\nsecond\nthird\ntask\nlistener\n" {
		t.Errorf("h1 handler order:\n%s", got)
	}
	if got := h.file("order-h2"); got != "task\nlistener\n" {
		t.Errorf("h2 handler order:\n%s", got)
	}
	h.stats(recap, "h1", Stats{Ok: 8, Changed: 7})
	h.outputContains("RUNNING HANDLER [first]")
}

func TestHandlersNotRunOnFailedHost(t *testing.T) {
	h := newHarness(t, "h1")
	h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - command: "true"
      notify: h
    - fail:
  handlers:
    - name: h
      shell: touch {{ tmp }}/ran
`)
	if h.file("ran") != "" || h.rec.count(EventTaskStart, "h") != 0 {
		t.Error("handler ran on a failed host")
	}
}

func TestBlockRescueAlways(t *testing.T) {
	h := newHarness(t, "ok", "bad", "worse")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - name: outer
      vars:
        marker: "{{ tmp }}/m-{{ inventory_hostname }}"
      block:
        - name: maybe fail
          fail: msg=bad
          when: inventory_hostname != 'ok'
          args:
            ignored_arg: "{{ omit }}"
        - name: skipped after failure
          shell: echo block >> {{ marker }}
      rescue:
        - name: rescue
          shell: echo rescue {{ ansible_failed_result.msg | default('') }} >> {{ marker }}
        - fail: msg=worse
          when: inventory_hostname == 'worse'
      always:
        - name: always
          shell: echo always >> {{ marker }}
    - name: after block
      shell: echo after >> {{ tmp }}/m-{{ inventory_hostname }}
`)
	want := map[string]string{"ok": "block\nalways\nafter\n", "bad": "rescue bad\nalways\nafter\n", "worse": "rescue bad\nalways\n"}
	for host, w := range want {
		if got := h.file("m-" + host); got != w {
			t.Errorf("%s ran:\n%s\nwant:\n%s", host, got, w)
		}
	}
	h.stats(recap, "ok", Stats{Ok: 3, Changed: 3, Skipped: 1})
	h.stats(recap, "bad", Stats{Ok: 3, Changed: 3, Skipped: 1, Rescued: 1})
	h.stats(recap, "worse", Stats{Ok: 2, Changed: 2, Rescued: 1, Failed: 1})
}

func TestBlockWithoutRescueStillRunsAlways(t *testing.T) {
	h := newHarness(t, "h1")
	recap := h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - block:
        - fail:
      always:
        - shell: touch {{ tmp }}/always
      when: true
      tags: [x]
    - shell: touch {{ tmp }}/after
`)
	if h.file("always") == "" && !fileExists(h.dir+"/always") {
		t.Error("always did not run")
	}
	if fileExists(h.dir + "/after") {
		t.Error("failed host went on after the block")
	}
	h.stats(recap, "h1", Stats{Ok: 1, Changed: 1, Failed: 1})
}

func TestTags(t *testing.T) {
	cases := []struct {
		tags, skip []string
		want       []string
	}{
		{nil, nil, []string{"a", "b", "untagged", "always"}},
		{[]string{"a"}, nil, []string{"a", "always"}},
		{[]string{"never"}, nil, []string{"never", "always"}},
		{[]string{"n"}, nil, []string{"never", "always"}},
		{nil, []string{"a"}, []string{"b", "untagged", "always"}},
		{nil, []string{"always"}, []string{"a", "b", "untagged"}},
		{[]string{"tagged"}, nil, []string{"a", "b", "always"}},
		{[]string{"untagged"}, nil, []string{"untagged", "always"}},
		{[]string{"blk"}, nil, []string{"b", "always"}},
	}
	src := `
- hosts: all
  gather_facts: false
  tasks:
    - { name: a, debug: msg=a, tags: a }
    - block:
        - { name: b, debug: msg=b }
      tags: [blk, b]
    - { name: untagged, debug: msg=u }
    - { name: never, debug: msg=n, tags: [never, n] }
    - { name: always, debug: msg=x, tags: always }
`
	for _, c := range cases {
		h := newHarness(t, "h1")
		h.run(src, func(o *Options) { o.Tags, o.SkipTags = c.tags, c.skip })
		var ran []string
		for _, e := range h.rec.events {
			if e.Kind == EventTaskStart {
				ran = append(ran, e.Task)
			}
		}
		if !reflect.DeepEqual(ran, c.want) {
			t.Errorf("tags=%v skip=%v ran %v, want %v", c.tags, c.skip, ran, c.want)
		}
	}
}

func TestSerialBatches(t *testing.T) {
	h := newHarness(t, "h1", "h2", "h3", "h4", "h5", "h6")
	h.run(`
- hosts: all
  gather_facts: false
  serial: [1, "40%"]
  tasks:
    - debug: msg="{{ ansible_play_batch | join(',') }}"
`)
	var batches []string
	for _, e := range h.rec.events {
		if e.Kind == EventPlayStart {
			batches = append(batches, strings.Join(e.Hosts, ","))
		}
	}
	want := []string{"h1", "h2,h3", "h4,h5", "h6"}
	if !reflect.DeepEqual(batches, want) {
		t.Errorf("batches = %v, want %v", batches, want)
	}
	if got := h.rec.results("debug")["h5"].Result.Msg; got != "h4,h5" {
		t.Errorf("ansible_play_batch on h5 = %q", got)
	}
}

func TestMaxFailPercentage(t *testing.T) {
	src := `
- hosts: all
  gather_facts: false
  serial: 4
  max_fail_percentage: %s
  tasks:
    - fail:
      when: inventory_hostname in ['h1', 'h2']
    - name: next
      debug: msg=x
`
	// 2 of 4 is 50%: not strictly above 50, above 49.
	for pct, wantNext := range map[string]int{"50": 2 + 2, "49": 0} {
		h := newHarness(t, "h1", "h2", "h3", "h4", "h5", "h6")
		recap := h.run(strings.Replace(src, "%s", pct, 1))
		if got := len(h.rec.results("next")); got != wantNext {
			t.Errorf("max_fail_percentage %s: next ran on %d hosts, want %d", pct, got, wantNext)
		}
		if wantNext == 0 && (!recap.Aborted || ExitCode(recap, nil) != ExitFailed) {
			t.Errorf("max_fail_percentage %s: aborted=%v exit=%d", pct, recap.Aborted, ExitCode(recap, nil))
		}
	}
}

func TestAnyErrorsFatal(t *testing.T) {
	h := newHarness(t, "h1", "h2", "h3")
	recap := h.run(`
- hosts: all
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - fail:
      when: inventory_hostname == 'h2'
    - name: next
      debug: msg=x
- hosts: all
  gather_facts: false
  tasks:
    - name: later play
      debug: msg=x
`)
	if len(h.rec.results("next"))+len(h.rec.results("later play")) != 0 {
		t.Error("tasks ran after a fatal error")
	}
	if !recap.Aborted {
		t.Error("recap not marked aborted")
	}
}

func TestMeta(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - meta: end_host
      when: inventory_hostname == 'h1'
    - name: h2 only
      debug: msg=x
    - meta: end_play
    - name: never
      debug: msg=x
- hosts: all
  gather_facts: false
  tasks:
    - name: next play
      debug: msg=x
`)
	if got := keys(h.rec.results("h2 only")); !reflect.DeepEqual(got, []string{"h2"}) {
		t.Errorf("after end_host: %v", got)
	}
	if len(h.rec.results("never")) != 0 {
		t.Error("end_play did not end the play")
	}
	if got := keys(h.rec.results("next play")); len(got) != 2 {
		t.Errorf("next play ran on %v", got)
	}
}

func TestStartAtTask(t *testing.T) {
	h := newHarness(t, "h1")
	h.run(`
- hosts: all
  gather_facts: false
  tasks:
    - { name: one, debug: msg=1 }
    - { name: two words, debug: msg=2 }
    - { name: three, debug: msg=3 }
`, func(o *Options) { o.StartAtTask = "two*" })
	var ran []string
	for _, e := range h.rec.events {
		if e.Kind == EventTaskStart {
			ran = append(ran, e.Task)
		}
	}
	if !reflect.DeepEqual(ran, []string{"two words", "three"}) {
		t.Errorf("ran %v", ran)
	}
}

func TestLimitAndPatterns(t *testing.T) {
	h := newHarness(t, "h1", "h2", "h3")
	h.groups = map[string][]string{"web": {"h1", "h2"}}
	h.run(`
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - name: t
      debug: msg=x
`, func(o *Options) { o.Limit = "h2:h3"; o.ExtraVars = map[string]any{"target": "web"} })
	if got := keys(h.rec.results("t")); !reflect.DeepEqual(got, []string{"h2"}) {
		t.Errorf("ran on %v, want [h2]", got)
	}
}

func TestListHostsAndTasks(t *testing.T) {
	pb, err := Parse("site.yml", []byte(`
- name: web
  hosts: web
  tags: [play]
  tasks:
    - { name: one, debug: msg=1, tags: [a] }
    - block:
        - { name: two, debug: msg=2 }
    - meta: flush_handlers
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Hosts: []Host{{Name: "h1"}, {Name: "h2"}}, Groups: map[string][]string{"web": {"h2"}}, NoFacts: true}
	plays, err := List(pb, opts)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteHostList(&b, pb, plays)
	WriteTaskList(&b, pb, plays)
	want := `
playbook: site.yml

  play #1 (web): web	TAGS: [play]
    pattern: ['web']
    hosts (1):
      h2

playbook: site.yml

  play #1 (web): web	TAGS: [play]
    tasks:
      one	TAGS: [play, a]
      two	TAGS: [play]
`
	if b.String() != want {
		t.Errorf("listing:\n%s\nwant:\n%s", b.String(), want)
	}
}

func keys(m map[string]Event) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
