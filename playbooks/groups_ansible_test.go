package playbooks

import (
	"testing"
)

// TestGroupByAddHostAsAnsible is ansible-playbook's behaviour, checked with ansible-core 2.14: group_by
// puts each host in a group named by its key (and the parents), add_host adds a host with
// its variables and groups; both report changed, later plays target the new groups, and
// group_names/groups include them. The caller's Groups are not modified.
func TestGroupByAddHostAsAnsible(t *testing.T) {
	h := newHarness(t, "h1", "h2")
	h.groups["web"] = []string{"h1", "h2"}
	h.hosts[0].Vars["kind"] = "a"
	h.hosts[1].Vars["kind"] = "b"
	recap := h.run(`
- hosts: all
  tasks:
    - group_by: {key: "kind_{{ kind }}", parents: [top]}
    - add_host: {name: newhost, groups: [added, other], foo: bar, tmp: "{{ tmp }}"}
      register: added
- hosts: kind_a
  tasks:
    - copy: {content: "{{ group_names | join(',') }} {{ groups.top | sort | join(',') }}", dest: "{{ tmp }}/{{ inventory_hostname }}.a"}
- hosts: "added:&other"
  tasks:
    - copy: {content: "{{ foo }} {{ group_names | join(',') }}", dest: "{{ tmp }}/{{ inventory_hostname }}.added"}
- hosts: h2
  tasks:
    - copy: {content: "{{ added is defined }}", dest: "{{ tmp }}/h2.registered"}
- hosts: "web:!kind_b"
  tasks:
    - copy: {content: "x", dest: "{{ tmp }}/{{ inventory_hostname }}.web"}
`)
	h.stats(recap, "h1", Stats{Ok: 4, Changed: 4})
	h.stats(recap, "h2", Stats{Ok: 2, Changed: 2}) // add_host ran on h1 only, its result stays there
	if got := h.file("h2.registered"); got != "false" {
		t.Errorf("add_host's result registered on h2: %q", got)
	}
	h.stats(recap, "newhost", Stats{Ok: 1, Changed: 1})
	if got := h.file("h1.a"); got != "kind_a,top,web h1,h2" {
		t.Errorf("h1.a = %q", got)
	}
	if got := h.file("h2.a"); got != "" {
		t.Errorf("h2 ran the kind_a play: %q", got)
	}
	if got := h.file("newhost.added"); got != "bar added,other" {
		t.Errorf("newhost.added = %q", got)
	}
	if h.file("h1.web") != "x" || h.file("h2.web") != "" {
		t.Errorf("web:!kind_b: h1 %q, h2 %q", h.file("h1.web"), h.file("h2.web"))
	}
	if len(h.groups) != 1 {
		t.Errorf("the caller's groups changed: %v", h.groups)
	}
}
