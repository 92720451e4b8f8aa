package playbooks

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeSetup stands for orch's setup module (orchestrator/modules, tested with
// the real facts command there): it reads the host's name through the
// connection, as a real setup does, and returns Ansible-named facts.
func fakeSetup(calls *atomic.Int32) Module {
	return ModuleFunc(func(ctx context.Context, t *TaskContext) (Result, error) {
		calls.Add(1)
		c, err := t.Conn()
		if err != nil {
			return Result{}, err
		}
		out, _, _, err := c.Run(ctx, "echo "+t.Host, nil, false)
		if err != nil {
			return Result{}, err
		}
		return Result{Data: map[string]any{"ansible_facts": map[string]any{
			"ansible_hostname": strings.TrimSpace(string(out)), "ansible_os_family": "Debian",
			"ansible_default_ipv4": map[string]any{"address": "10.0.0.1"},
		}}}, nil
	})
}

// TestFactsGatheredByDefault: a play that says nothing about gather_facts
// runs setup once per host first, and the facts are both ansible_facts.X
// and ansible_X, as in Ansible.
func TestFactsGatheredByDefault(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	var calls atomic.Int32
	h.modules["setup"] = fakeSetup(&calls)
	recap := h.run(`- hosts: all
  tasks:
    - name: use facts
      assert:
        that:
          - ansible_facts.hostname == inventory_hostname
          - ansible_hostname == inventory_hostname
          - ansible_facts['os_family'] == 'Debian'
          - ansible_default_ipv4.address == '10.0.0.1'
- hosts: h1
  gather_facts: false
  tasks:
    - debug: msg="{{ ansible_facts.hostname }}"
`, func(o *Options) { o.NoFacts = false })
	if n := calls.Load(); n != 2 {
		t.Errorf("setup ran %d times, want once per host (2)", n)
	}
	h.stats(recap, "h1", Stats{Ok: 3})
	h.stats(recap, "h2", Stats{Ok: 2})
	h.outputContains("TASK [Gathering Facts]", "TASK [use facts]")
	if got := h.rec.count(EventTaskStart, "Gathering Facts"); got != 1 {
		t.Errorf("Gathering Facts started %d times, want 1 (the second play says false)", got)
	}
}

// TestFactsNoSetupModule: without a setup module, a play gathering facts is
// refused before anything runs, naming the play and the position; NoFacts
// turns the default off but an explicit gather_facts: true still needs setup.
func TestFactsNoSetupModule(t *testing.T) {
	h := newHarness(t, "h1")
	_, err := h.runErr("- name: web\n  hosts: all\n  tasks:\n    - shell: touch {{ tmp }}/ran\n", func(o *Options) { o.NoFacts = false })
	if !errors.Is(err, ErrNoSetup) || !strings.Contains(err.Error(), `site.yml:1:3: key "gather_facts": play "web" (gather_facts defaults to true`) {
		t.Errorf("err = %v", err)
	}
	if fileExists(h.dir + "/ran") {
		t.Error("a task ran")
	}
	_, err = h.runErr("- hosts: all\n  gather_facts: true\n  tasks: []\n")
	if !errors.Is(err, ErrNoSetup) || !strings.Contains(err.Error(), "gather_facts: true") {
		t.Errorf("explicit true with NoFacts: err = %v", err)
	}
	h.run("- hosts: all\n  tasks:\n    - shell: touch {{ tmp }}/ran\n")
	if !fileExists(h.dir + "/ran") {
		t.Error("with NoFacts the play should run without facts")
	}
}

// TestFactsSubsetAndTags: gather_subset reaches setup, and --tags does not
// skip fact gathering (it is tagged always, as in Ansible).
func TestFactsSubsetAndTags(t *testing.T) {
	h := newHarness(t, "h1")
	var got any
	h.modules["setup"] = ModuleFunc(func(ctx context.Context, t *TaskContext) (Result, error) {
		got = t.Args["gather_subset"]
		return Result{Data: map[string]any{"ansible_facts": map[string]any{"ansible_x": 1}}}, nil
	})
	recap := h.run("- hosts: all\n  gather_subset: [min]\n  tasks:\n    - debug: msg={{ ansible_facts.x }}\n      tags: [t]\n    - debug: msg=other\n",
		func(o *Options) { o.NoFacts, o.Tags = false, []string{"t"} })
	if s, ok := got.([]any); !ok || len(s) != 1 || s[0] != "min" {
		t.Errorf("gather_subset = %#v", got)
	}
	h.stats(recap, "h1", Stats{Ok: 2})
}
