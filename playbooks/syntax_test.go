package playbooks

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyntaxCheckReportsEveryBlocker: one pass reports every problem of a
// playbook, in the imported files and roles too, each with file:line:col,
// and unknown modules name the closest known ones.
func TestSyntaxCheckReportsEveryBlocker(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml": `- hosts: all
  gather_facts: false
  bogus_play_key: 1
  roles: [r]
  tasks:
    - comand: echo hi
    - debug: { msg: "{{ x | nofilter }}" }
    - import_tasks: more.yml
    - shell: echo ok
- hosts: all
  gather_facts: false
  tasks: [ { name: no module } ]
`,
		"more.yml":               "- copyy: { src: a, dest: b }\n",
		"roles/r/tasks/main.yml": "- ansible.builtin.templat: { src: a, dest: b }\n",
	})
	err := SyntaxCheck(filepath.Join(dir, "site.yml"), nil)
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, ErrParse) || !errors.Is(err, ErrUnknownModule) {
		t.Errorf("err is not ErrParse and ErrUnknownModule: %v", err)
	}
	want := []string{
		"site.yml:3:3: key \"bogus_play_key\": unknown play keyword",
		"site.yml:6:7: key \"comand\": unknown module (or unknown task keyword): comand; did you mean command",
		"site.yml:7:21: key \"debug\": template syntax error",
		"nofilter",
		"more.yml:1:3: key \"copyy\": unknown module (or unknown task keyword): copyy; did you mean copy",
		"roles/r/tasks/main.yml:1:3: key \"templat\": unknown module (or unknown task keyword): templat; did you mean template",
		"site.yml:12:12: task \"no module\" has no module",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want)-1 {
		t.Errorf("%d problems reported, want %d:\n%v", n, len(want)-1, err)
	}
}

// TestSyntaxCheckAcceptsValid: a valid playbook with roles passes.
func TestSyntaxCheckAcceptsValid(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"site.yml":               "- hosts: all\n  gather_facts: false\n  roles: [r]\n",
		"roles/r/tasks/main.yml": "- ansible.builtin.debug: { msg: hi }\n",
	})
	if err := SyntaxCheck(filepath.Join(dir, "site.yml"), nil); err != nil {
		t.Fatal(err)
	}
}
