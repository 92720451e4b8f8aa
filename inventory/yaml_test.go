package inventory

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const yamlInventory = `
all:
  hosts:
    mail.example.com:
  vars:
    ntp: ntp.example.com
  children:
    webservers:
      hosts:
        foo.example.com:
          http_port: 80
        bar.example.com:2222:
      vars:
        proxy: &proxy {host: proxy.example.com, port: 3128}
    dbservers:
      hosts:
        db[01:02].example.com:
          become: yes
          opts:
            <<: *proxy
            port: 8080
      children:
        replicas:
          hosts: replica1
prod:
  children:
    webservers:
    dbservers:
`

func TestYAMLStructure(t *testing.T) {
	inv := mustParse(t, "inv.yml", yamlInventory)
	if got := hostNames(inv.Hosts()); !reflect.DeepEqual(got, []string{"mail.example.com", "foo.example.com", "bar.example.com", "db01.example.com", "db02.example.com", "replica1"}) {
		t.Errorf("hosts = %v", got)
	}
	if got := inv.Group("all").Children; !reflect.DeepEqual(got, []string{"ungrouped", "webservers", "dbservers", "prod"}) {
		t.Errorf("all children = %v", got)
	}
	// A host directly under all also lands in ungrouped, as in Ansible.
	if got := inv.Group("ungrouped").Hosts; !reflect.DeepEqual(got, []string{"mail.example.com"}) {
		t.Errorf("ungrouped = %v", got)
	}
	if got := inv.Group("prod").Children; !reflect.DeepEqual(got, []string{"webservers", "dbservers"}) {
		t.Errorf("prod children = %v", got)
	}
	want := map[string]any{
		"ntp": "ntp.example.com", "become": true,
		"opts": map[string]any{"host": "proxy.example.com", "port": 8080},
	}
	if got := inv.Host("db02.example.com").Vars(); !reflect.DeepEqual(got, want) {
		t.Errorf("db02 vars = %#v, want %#v", got, want)
	}
	if v, _ := inv.Host("bar.example.com").Var("ansible_port"); v != 2222 {
		t.Errorf("bar ansible_port = %#v", v)
	}
	if got := inv.Host("replica1").Groups(); !reflect.DeepEqual(got, []string{"dbservers", "prod", "replicas"}) {
		t.Errorf("replica1 groups = %v", got)
	}
	p, _ := inv.Host("foo.example.com").VarPos("http_port")
	if p != (Pos{"inv.yml", 11, 11}) {
		t.Errorf("http_port pos = %v", p)
	}
}

func TestYAMLValues(t *testing.T) {
	inv := mustParse(t, "inv.yml", `all:
  hosts:
    h:
      date: 2024-01-02
      quoted_yes: "yes"
      off: off
      float: 1.5
      list: [1, two, {three: 3}]
      null_value: ~
      octal: 0o17
`)
	want := map[string]any{
		"date": "2024-01-02", "quoted_yes": "yes", "off": false, "float": 1.5,
		"list": []any{1, "two", map[string]any{"three": 3}}, "null_value": nil, "octal": 15,
	}
	if got := inv.Host("h").Vars(); !reflect.DeepEqual(got, want) {
		t.Errorf("vars = %#v\nwant %#v", got, want)
	}
}

func TestYAMLErrors(t *testing.T) {
	cases := []struct {
		name, text, want string
		sentinel         error
	}{
		{"syntax", "all:\n  hosts: [\n", `inv.yml:2: syntax error: did not find expected node content`, ErrSyntax},
		{"not a mapping", "- a\n- b\n", `inv.yml:1:1: syntax error: a YAML inventory must be a mapping of group names, got a list`, ErrSyntax},
		{"unknown key", "web:\n  host:\n    a:\n", `inv.yml:2:3: group "web": syntax error: unexpected key "host" (a group has only vars, children and hosts)`, ErrSyntax},
		{"group body", "web: 3\n", `inv.yml:1:6: group "web": syntax error: group body must be a mapping with vars, children or hosts, got scalar "3"`, ErrSyntax},
		{"hosts list", "web:\n  hosts:\n    - a\n", `inv.yml:3:5: group "web": syntax error: hosts must be a mapping, got a list`, ErrSyntax},
		{"host vars", "web:\n  hosts:\n    a: 3\n", `inv.yml:3:8: host "a": syntax error: host variables must be a mapping, got scalar "3"`, ErrSyntax},
		{"vars scalar", "web:\n  vars: x\n", `inv.yml:2:9: group "web": syntax error: vars must be a mapping, got scalar "x"`, ErrSyntax},
		{"duplicate", "web:\n  hosts:\n    a:\n    a:\n", `inv.yml:4:5: syntax error: key "a" already defined at line 3`, ErrSyntax},
		{"range", "web:\n  hosts:\n    w[1:x]:\n", `inv.yml:3:6: host "w[1:x]": bad range "1:x": end "x" is not a number or a letter`, ErrBadRange},
		{"cycle", "a:\n  children:\n    b:\n      children:\n        a:\n", `inv.yml:3:5: group "a": cycle in group children: a -> b -> a`, ErrCycle},
		{"all as child", "g:\n  children:\n    all:\n", `inv.yml:3:5: group "g": cycle in group children: all is the root group and cannot be a child of g`, ErrCycle},
		{"plugin", "plugin: aws_ec2\n", `inv.yml:1:1: syntax error: inventory plugin configuration files are not supported`, ErrSyntax},
		{"merge self", "all:\n  hosts:\n    h: &a\n      <<: *a\n", `inv.yml:4:11: syntax error: merge key: alias cycle through anchor &a`, ErrSyntax},
		{"merge cycle", "all:\n  vars:\n    x: &a\n      y: &b\n        <<: [{k: 1}, *a]\n      <<: *b\n", `inv.yml:5:22: syntax error: merge key: alias cycle through anchor &a`, ErrSyntax},
		{"value cycle via merge", "all:\n  vars:\n    x: &a\n      y: &b\n        <<: [{k: 1}, *a]\n", `inv.yml:4:10: syntax error: alias cycle through anchor &b`, ErrSyntax},
		{"value self", "all:\n  vars:\n    a: &a [1, *a]\n", `inv.yml:3:15: syntax error: alias cycle through anchor &a`, ErrSyntax},
		{"group self", "all: &a\n  children:\n    x: *a\n", `inv.yml:3:8: syntax error: group body: alias cycle through anchor &a`, ErrSyntax},
		{"priority", "g:\n  vars:\n    ansible_group_priority: [1]\n", `inv.yml:3:5: group "g": invalid value: ansible_group_priority [1] is not an integer`, ErrBadValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseYAML("inv.yml", []byte(c.text))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if err.Error() != c.want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), c.want)
			}
			if !errors.Is(err, c.sentinel) {
				t.Errorf("error %v does not wrap %v", err, c.sentinel)
			}
		})
	}
}

// Without an extension the content decides between YAML and INI.
func TestParseSniff(t *testing.T) {
	cases := []struct{ text, host string }{
		{"all:\n  hosts:\n    y1:\n", "y1"},
		{"[g]\ni1\n", "i1"},
		{"i2 ansible_host=10.0.0.1\n", "i2"},
		{"i3:2222\n", "i3"},
		{"# comment\ni4\ni5\n", "i4"},
	}
	for _, c := range cases {
		inv := mustParse(t, "hosts", c.text)
		if inv.Host(c.host) == nil {
			t.Errorf("%q: host %s missing; hosts %v", c.text, c.host, hostNames(inv.Hosts()))
		}
	}
	// A broken YAML file that starts like YAML reports the YAML error.
	_, err := Parse("hosts", []byte("all:\n  hosts: [\n"))
	if err == nil || !errors.Is(err, ErrSyntax) || err.Error() != "hosts:2: syntax error: did not find expected node content" {
		t.Errorf("broken YAML error = %v", err)
	}
}

// yaml.v3 reports some errors without a line; the parser finds it.
func TestYAMLErrorLineLocated(t *testing.T) {
	cases := map[string]string{
		"all:\n  vars:\n    a: \"\\q\"\n":         `inv.yml:3: syntax error: found unknown escape character`,
		"all:\n  vars:\n    a: 1\n    b: *nope\n": `inv.yml:4: syntax error: unknown anchor 'nope' referenced`,
	}
	for text, want := range cases {
		_, err := ParseYAML("inv.yml", []byte(text))
		if err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %s", text, err, want)
		}
	}
}

// A merge DAG that names one anchor many times at every level resolves in
// linear time (2^40 paths without memoisation), and shared (acyclic)
// aliases stay legal.
func TestYAMLMergeDAGLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("all:\n  vars:\n    l0: &l0 {k0: 0}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "    l%d: &l%d {<<: [*l%d, *l%d], k%d: %d}\n", i, i, i-1, i-1, i, i)
	}
	inv := mustParse(t, "inv.yml", b.String())
	l40, _ := inv.Group("all").Vars["l40"].(map[string]any)
	if len(l40) != 41 || l40["k0"] != 0 || l40["k40"] != 40 {
		t.Errorf("l40 = %v", l40)
	}
}
