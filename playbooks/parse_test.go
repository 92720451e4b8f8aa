package playbooks

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"not a list", "hosts: all\n", `pb.yml:1:1: a playbook is a list of plays, got a mapping`},
		{"unknown play key", "- hosts: all\n  taks: []\n", `pb.yml:2:3: key "taks": unknown play keyword`},
		{"missing hosts", "- name: x\n  tasks: []\n", `pb.yml:1:3: key "hosts": a play needs hosts`},
		{"two modules", "- hosts: all\n  tasks:\n    - command: a\n      shell: b\n", `pb.yml:4:7: key "shell": unknown task keyword, or a second module in a task that already runs "command"`},
		{"typo keyword", "- hosts: all\n  tasks:\n    - debug: msg=x\n      whne: x\n", `pb.yml:4:7: key "whne": unknown task keyword`},
		{"no module", "- hosts: all\n  tasks:\n    - name: x\n", `pb.yml:3:7: task "x" has no module`},
		{"bad serial", "- hosts: all\n  serial: lots\n  tasks: []\n", `pb.yml:2:11: key "serial": serial must be`},
		{"bad serial pct", "- hosts: all\n  serial: [1, 120%]\n  tasks: []\n", `pb.yml:2:15: key "serial"`},
		{"bad when", "- hosts: all\n  tasks:\n    - debug: msg=x\n      when: x ==\n", `pb.yml:4:13: key "when": template syntax error`},
		{"bad template", "- hosts: all\n  tasks:\n    - debug:\n        msg: \"{{ x | nofilter }}\"\n", `pb.yml:4:14: key "debug": template syntax error: "x | nofilter": unknown filter "nofilter"`},
		{"gather_facts", "- hosts: all\n  gather_facts: maybe\n", `pb.yml:2:17: key "gather_facts"`},
		{"unknown handler", "- hosts: all\n  tasks:\n    - debug: msg=x\n      notify: nope\n", `pb.yml:3:7: key "notify": no handler named or listening to "nope"`},
		{"rescue without block", "- hosts: all\n  tasks:\n    - debug: msg=x\n      rescue: []\n", `pb.yml:4:7: rescue and always need a block`},
		{"bad meta", "- hosts: all\n  tasks:\n    - meta: reboot\n", `pb.yml:3:7: key "meta": unsupported meta action "reboot"`},
		{"yaml syntax", "- hosts: all\n  tasks: [\n", `pb.yml:2:1: yaml: line 2: did not find expected node content`},
		{"bad register", "- hosts: all\n  tasks:\n    - debug: msg=x\n      register: a-b\n", `pb.yml:4:17: key "register": "a-b" is not a valid variable name`},
		{"dup key", "- hosts: all\n  hosts: web\n", `pb.yml:2:3: key "hosts": duplicate key in a play`},
		{"args list", "- hosts: all\n  tasks:\n    - copy: [a]\n", `pb.yml:3:13: key "copy": module arguments must be a mapping or a string`},
		{"missing role", "- hosts: all\n  roles: [x]\n", `pb.yml:2:11: key "role": role not found: "x"`},
		{"empty", "", `pb.yml:1:1: empty playbook`},
	}
	for _, c := range cases {
		_, err := Parse("pb.yml", []byte(c.src))
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !errors.Is(err, ErrParse) {
			t.Errorf("%s: %v is not ErrParse", c.name, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got: %v\nwant: %s", c.name, err, c.want)
		}
	}
}

func TestUnknownModuleRejectedBeforeRunning(t *testing.T) {
	h := newHarness(t, "h1")
	_, err := h.runErr("- hosts: all\n  tasks:\n    - shell: touch {{ tmp }}/ran\n    - nosuch: { a: 1 }\n")
	if !errors.Is(err, ErrUnknownModule) || !strings.Contains(err.Error(), `site.yml:4:7: key "nosuch"`) {
		t.Errorf("err = %v", err)
	}
	if fileExists(h.dir + "/ran") {
		t.Error("a task ran before the unknown module was reported")
	}
	pb, _ := Parse("x.yml", []byte("- hosts: all\n  gather_facts: false\n  tasks:\n    - mine: {}\n"))
	if err := Validate(pb, Registry{"mine": ModuleFunc(nil)}); err != nil {
		t.Errorf("Validate with the module registered: %v", err)
	}
}

func TestParseForms(t *testing.T) {
	pb, err := Parse("pb.yml", []byte(`
- hosts: [web, db]
  serial: ["10%", 2]
  max_fail_percentage: 25
  tasks:
    - ansible.builtin.command: echo hi creates=/x chdir=/tmp
      args: { stdin: data }
    - shell: "echo 'a b'  | cat"
    - debug: msg="two words" var=x
    - name: with items
      debug: { msg: "{{ item }}" }
      with_items: "{{ list }}"
      until: "x"
      retries: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	play := pb.Plays[0]
	if play.Hosts != "web:db" || len(play.Serial) != 2 || *play.MaxFailPercentage != 25 {
		t.Errorf("play = %+v", play)
	}
	args, err := prepare(pb, Builtins(), true)
	if err != nil {
		t.Fatal(err)
	}
	tasks := play.Tasks
	if got := args[tasks[0]]; got["cmd"] != "echo hi" || got["creates"] != "/x" || got["chdir"] != "/tmp" || got["stdin"] != "data" {
		t.Errorf("command args = %v", got)
	}
	if got := args[tasks[1]]["cmd"]; got != "echo 'a b'  | cat" {
		t.Errorf("shell cmd = %q", got)
	}
	if got := args[tasks[2]]; got["msg"] != "two words" || got["var"] != "x" {
		t.Errorf("debug args = %v", got)
	}
	if !tasks[3].LoopFlatten || tasks[3].Until != "x" {
		t.Errorf("loop task = %+v", tasks[3])
	}
}
