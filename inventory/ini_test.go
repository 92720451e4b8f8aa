package inventory

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// mustParse parses INI or YAML text (detected) or fails the test.
func mustParse(t *testing.T, name, text string) *Inventory {
	t.Helper()
	inv, err := Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return inv
}

func TestINIStructure(t *testing.T) {
	inv := mustParse(t, "inv.ini", `
loose1
[web]
web[1:3] http_port=80
[db]
db1
[web]
web4
[prod:children]
web
db
[empty]
`)
	wantGroups := []string{"all", "ungrouped", "web", "db", "prod", "empty"}
	if got := groupNames(inv.Groups()); !reflect.DeepEqual(got, wantGroups) {
		t.Errorf("groups = %v, want %v", got, wantGroups)
	}
	wantHosts := []string{"loose1", "web1", "web2", "web3", "db1", "web4"}
	if got := hostNames(inv.Hosts()); !reflect.DeepEqual(got, wantHosts) {
		t.Errorf("hosts = %v, want %v", got, wantHosts)
	}
	checks := []struct {
		group          string
		hosts, chilren []string
	}{
		{"all", []string{}, []string{"ungrouped", "prod", "empty"}},
		{"ungrouped", []string{"loose1"}, []string{}},
		{"web", []string{"web1", "web2", "web3", "web4"}, []string{}},
		{"prod", []string{}, []string{"web", "db"}},
	}
	for _, c := range checks {
		g := inv.Group(c.group)
		if !reflect.DeepEqual(g.Hosts, c.hosts) || !reflect.DeepEqual(g.Children, c.chilren) {
			t.Errorf("group %s: hosts %v children %v, want %v %v", c.group, g.Hosts, g.Children, c.hosts, c.chilren)
		}
	}
	if got := inv.Host("web2").Groups(); !reflect.DeepEqual(got, []string{"prod", "web"}) {
		t.Errorf("web2 groups = %v", got)
	}
	if got := inv.Host("loose1").Groups(); !reflect.DeepEqual(got, []string{"ungrouped"}) {
		t.Errorf("loose1 groups = %v", got)
	}
}

// A host listed before any section and later in a group leaves ungrouped,
// and a host:port entry sets ansible_port.
func TestINIUngroupedAndPort(t *testing.T) {
	inv := mustParse(t, "inv.ini", "h1:2222\nh2\n[g]\nh1\n[ipv6]\n[2001:db8::1]:2200\n2001:db8::2\n")
	if got := inv.Group("ungrouped").Hosts; !reflect.DeepEqual(got, []string{"h2"}) {
		t.Errorf("ungrouped = %v, want [h2]", got)
	}
	if v, _ := inv.Host("h1").Var("ansible_port"); v != 2222 {
		t.Errorf("h1 ansible_port = %#v", v)
	}
	if inv.Host("2001:db8::1") == nil || inv.Host("2001:db8::2") == nil {
		t.Errorf("IPv6 hosts: %v", hostNames(inv.Hosts()))
	}
	if v, _ := inv.Host("2001:db8::1").Var("ansible_port"); v != 2200 {
		t.Errorf("[v6]:port ansible_port = %#v", v)
	}
}

// Inline host values go through Python literal evaluation; quoting with
// shlex rules protects them.
func TestINIInlineValues(t *testing.T) {
	inv := mustParse(t, "inv.ini", `[g]
h1 a=1 b=True c=FALSE d="hello world" e="'0123'" f=[1,'x'] f2="[1,'x']" g={'k':None} g2="{'k': None}" h=/var/lib i=1.5 j='#x' k=v#comment
[g:vars]
s = some string # not a literal
n=  42  
l=[1, 2]
q='quoted'
`)
	want := map[string]any{
		"a": 1, "b": true, "c": "FALSE", "d": "hello world", "e": "0123",
		"f": "[1,x]", "f2": []any{1, "x"}, "g": "{k:None}", "g2": map[string]any{"k": nil}, "h": "/var/lib", "i": 1.5, "j": "#x", "k": "v",
		"s": "some string # not a literal", "n": 42, "l": []any{1, 2}, "q": "quoted",
	}
	if got := inv.Host("h1").Vars(); !reflect.DeepEqual(got, want) {
		t.Errorf("vars:\n got %#v\nwant %#v", got, want)
	}
}

func TestINIPendingChildren(t *testing.T) {
	inv := mustParse(t, "inv.ini", "[parent:children]\nchild\n[child]\nc1\n[child:vars]\nx=1\n")
	if got := inv.Group("parent").Children; !reflect.DeepEqual(got, []string{"child"}) {
		t.Errorf("parent children = %v", got)
	}
	if got := inv.Group("all").Children; !reflect.DeepEqual(got, []string{"ungrouped", "parent"}) {
		t.Errorf("all children = %v", got)
	}
}

func TestINIErrors(t *testing.T) {
	cases := []struct {
		name, text, want string
		sentinel         error
	}{
		{"bad range", "[web]\nweb[1:x]\n", `inv.ini:2:4: host "web[1:x]": bad range "1:x": end "x" is not a number or a letter`, ErrBadRange},
		{"range in indented line", "[web]\n  a-[01:3]-b\n", `inv.ini:2:5: host "a-[01:3]-b": bad range "01:3": host range must specify equal-length begin and end formats`, ErrBadRange},
		{"range order", "x[5:1]\n", `inv.ini:1:2: host "x[5:1]": bad range "5:1": host range must have begin <= end`, ErrBadRange},
		{"unclosed range", "x[5:1\n", `inv.ini:1:2: host "x[5:1": bad range "5:1": missing ]`, ErrBadRange},
		{"huge range", "x[0:9999999]\n", `inv.ini:1:2: host "x[0:9999999]": bad range "0:9999999": expands to more than 100000 hosts`, ErrBadRange},
		{"bad section type", "[web:foo]\n", `inv.ini:1:1: group "web": syntax error: section [web:foo] has unknown type "foo" (want hosts, children or vars)`, ErrSyntax},
		{"spaces in section", "[web servers]\n", `inv.ini:1:1: syntax error: invalid section entry "[web servers]": make sure there are no spaces or other invalid characters in it`, ErrSyntax},
		{"bad host var", "[g]\nh1 a=1 junk\n", `inv.ini:2:8: host "h1": syntax error: expected key=value host variable assignment, got "junk"`, ErrSyntax},
		{"unclosed quote", "[g]\nh1 a='x\n", `inv.ini:2:6: syntax error: host definition "h1 a='x": no closing quotation`, ErrSyntax},
		{"bad vars line", "[g]\nh\n[g:vars]\njusttext\n", `inv.ini:4:1: group "g": syntax error: expected key=value, got "justtext"`, ErrSyntax},
		{"bad child line", "[g:children]\na b\n", `inv.ini:2:1: group "g": syntax error: expected a group name in [g:children], got "a b"`, ErrSyntax},
		{"undefined child", "[p:children]\nnope\n", `inv.ini:2:1: group "p": undefined group "nope" in section [p:children]`, ErrUndefinedGroup},
		{"vars of undefined group", "[nope:vars]\nx=1\n", `inv.ini:1:1: group "nope": undefined group: section [nope:vars] is not valid for a group that has no [nope] or [nope:children] section`, ErrUndefinedGroup},
		{"self child", "[a:children]\na\n", `inv.ini:2:1: group "a": cycle in group children: a -> a`, ErrCycle},
		{"cycle", "[a:children]\nb\n[b:children]\nc\n[c:children]\na\n", `inv.ini:6:1: group "c": cycle in group children: c -> a -> b -> c`, ErrCycle},
		{"all as child", "[g:children]\nall\n", `inv.ini:2:1: group "g": cycle in group children: all is the root group and cannot be a child of g`, ErrCycle},
		{"bad priority", "[g]\n[g:vars]\nansible_group_priority=high\n", `inv.ini:3:1: group "g": invalid value: ansible_group_priority high is not an integer`, ErrBadValue},
		{"empty host", "[g]\n'' x=1\n", `inv.ini:2:1: syntax error: empty host name in "'' x=1"`, ErrSyntax},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseINI("inv.ini", []byte(c.text))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if err.Error() != c.want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), c.want)
			}
			if !errors.Is(err, c.sentinel) {
				t.Errorf("error %v does not wrap %v", err, c.sentinel)
			}
			var ie *Error
			if !errors.As(err, &ie) || ie.Pos.Line == 0 {
				t.Errorf("error %v has no line", err)
			}
		})
	}
}

func TestINIWarnings(t *testing.T) {
	inv := mustParse(t, "inv.ini", "[web-servers]\nweb\n[web]\nx\n")
	got := strings.Join(inv.Warnings(), "\n")
	for _, want := range []string{`invalid characters in group name "web-servers"`, "Found both group and host with same name: web"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings %q lack %q", got, want)
		}
	}
}
