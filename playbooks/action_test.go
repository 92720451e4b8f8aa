package playbooks

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestTemplatedAction: ansible-examples' conditionals_part1.yml names its module with a
// variable (`action: "{{ packager }} pkg={{ apache }} state=latest"`). The playbook is
// accepted, the module is found once templated and gets the key=value arguments, args:
// merged under them; an unknown templated name fails the task naming the closest modules.
func TestTemplatedAction(t *testing.T) {
	h := newHarness(t, "h1")
	var got []Args
	h.modules["yum"] = ModuleFunc(func(ctx context.Context, tc *TaskContext) (Result, error) {
		got = append(got, tc.Args)
		return Result{}, tc.Change("install "+tc.Args["pkg"].(string), nil)
	})
	src := `- hosts: all
  gather_facts: false
  vars: {packager: yum, apache: httpd, bad: yumm}
  tasks:
    - name: ensure apache is latest
      action: "{{ packager }} pkg={{ apache }} state=latest"
      args: {state: present, extra: 1}
    - action: "{{ 'debug' }} msg=hello"
    - action: "{{ bad }} pkg=x"
      ignore_errors: true
`
	path := filepath.Join(t.TempDir(), "site.yml")
	writeFile(t, path, src)
	if err := SyntaxCheck(path, h.modules); err != nil {
		t.Fatalf("syntax check: %v", err)
	}
	recap := h.run(src)
	h.stats(recap, "h1", Stats{Ok: 3, Changed: 1, Ignored: 1})
	if len(got) != 1 || got[0]["pkg"] != "httpd" || got[0]["state"] != "latest" || got[0]["extra"] == nil {
		t.Fatalf("yum got %v", got)
	}
	h.outputContains("ok: [h1] => hello", "yumm", "did you mean yum")
	if strings.Contains(h.out.String(), "\x00") {
		t.Errorf("output shows the internal key:\n%s", h.out.String())
	}
}
