package template

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestAnsibleFilters covers Ansible's filters and tests on the gonja engine.
func TestAnsibleFilters(t *testing.T) {
	e := New()
	vars := testVars()
	vars["pkgs"] = []any{map[string]any{"name": "a", "state": "present", "ver": "1.2"}, map[string]any{"name": "b", "state": "absent"}}
	vars["data"] = map[string]any{"users": []any{map[string]any{"name": "x", "groups": []any{"g1", "g2"}}, map[string]any{"name": "y", "groups": []any{}}}}
	cases := []struct {
		in   string
		want any
	}{
		{"{{ missing | d('x') }}", "x"},
		{"{{ '' | default('x', true) }}", "x"},
		{"{{ '' | default('x') }}", ""},
		{"{{ 'a' | mandatory }}", "a"},
		{"{{ '3' | int + '1.5' | float }}", 4.5},
		{"{{ 'off' | bool }}", false},
		{"{{ 1 | string ~ 'x' }}", "1x"},
		{"{{ 'ab' | list }}", []any{"a", "b"}},
		{"{{ pkgs | selectattr('ver', 'defined') | map(attribute='name') | list }}", []any{"a"}},
		{"{{ pkgs | rejectattr('state', 'equalto', 'absent') | map(attribute='name') | list }}", []any{"a"}},
		{"{{ pkgs | selectattr('name', 'match', '^b') | map(attribute='state') | first }}", "absent"},
		{"{{ pkgs | map(attribute='ver') | select('defined') | list }}", []any{"1.2"}},
		{"{{ pkgs | map(attribute='ver', default='-') | list }}", []any{"1.2", "-"}},
		{"{{ ['a', 'b'] | map('upper') | list }}", []any{"A", "B"}},
		{"{{ {'a': {'x': 1}} | combine({'a': {'y': 2}}, recursive=True) }}", map[string]any{"a": map[string]any{"x": 1, "y": 2}}},
		{"{{ {'a': 1} | combine({'b': 2}, {'c': 3}) | dict2items | items2dict }}", map[string]any{"a": 1, "b": 2, "c": 3}},
		{"{{ {'a': 1} | to_json }}", `{"a":1}`},
		{"{{ '[1, 2]' | from_json | sum }}", 3},
		{"{{ {'a': [1]} | to_nice_json }}", "{\n    \"a\": [\n        1\n    ]\n}"},
		{"{{ 'a: 1' | from_yaml }}", map[string]any{"a": 1}},
		{"{{ {'a': {'b': 1}} | to_nice_yaml }}", "a:\n  b: 1\n"},
		{"{{ 'v1.2.3' | regex_search('[0-9.]+') }}", "1.2.3"},
		{"{{ 'a1b2' | regex_findall('[0-9]') }}", []any{"1", "2"}},
		{"{{ 'host-01' | regex_replace('^host-(\\\\d+)$', 'node\\\\1') }}", "node01"},
		{"{{ 'hi' | b64encode | b64decode }}", "hi"},
		{"{{ '/a/b/c.txt' | basename }}", "c.txt"},
		{"{{ '/a/b/c.txt' | dirname }}", "/a/b"},
		{"{{ 'c.tar.gz' | splitext }}", []any{"c.tar", ".gz"}},
		{"{{ \"it's\" | quote }}", `'it'"'"'s'`},
		{"{{ 'abc' | hash('sha1') }}", "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"{{ 'abc' | hash('md5') }}", "900150983cd24fb0d6963f7d28e17f72"},
		{"{{ 'abc' | hash('sha256') }}", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"{{ 'abc' | checksum }}", "a9993e364706816aba3e25717850c26c9cd0d89d"},
		{"{{ [1, 2, 2, 3] | unique }}", []any{1, 2, 3}},
		{"{{ [1, 2] | union([2, 3]) }}", []any{1, 2, 3}},
		{"{{ [1, 2, 3] | difference([2]) }}", []any{1, 3}},
		{"{{ [1, 2, 3] | intersect([2, 3, 4]) }}", []any{2, 3}},
		{"{{ [1, 2] | symmetric_difference([2, 3]) }}", []any{1, 3}},
		{"{{ [1, 2] | zip(['a', 'b']) | list }}", []any{[]any{1, "a"}, []any{2, "b"}}},
		{"{{ [1, 2] | product(['a']) | list }}", []any{[]any{1, "a"}, []any{2, "a"}}},
		{"{{ [1, [2, [3]]] | flatten }}", []any{1, 2, 3}},
		{"{{ [1, [2, [3]]] | flatten(levels=1) }}", []any{1, 2, []any{3}}},
		{"{{ [3, 1] | min }} {{ [3, 1] | max }} {{ [3, 1] | sum }} {{ [3, 1] | length }} {{ [3, 1] | count }}", "1 3 4 2 2"},
		{"{{ [3, 1] | first }}{{ [3, 1] | last }}", "31"},
		{"{{ (n > 1) | ternary('yes', 'no') }}", "yes"},
		{"{{ ['h1'] | map('extract', hostvars, 'ip') | list }}", []any{"10.0.0.1"}},
		{"{{ 'h1' | extract(hostvars) }}", map[string]any{"ip": "10.0.0.1"}},
		{`{{ data | json_query("users[?name=='x'].groups[]") }}`, []any{"g1", "g2"}},
		{"{{ data.users | json_query('[*].name') }}", []any{"x", "y"}},
		{"{{ data.users | subelements('groups') | map('last') | list }}", []any{"g1", "g2"}},
		{"{{ '1.10' is version('1.9', '>') }}", true},
		{"{{ '1.2' is version('1.2.0', '<') }}", true},
		{"{{ '2.0b1' is version('2.0', '<', true) }}", true},
		{"{{ '1.0.0-rc.1' is version('1.0.0', '<', version_type='semver') }}", true},
		{"{{ '12' | version_compare('11', '>=') }}", true},
		{"{{ '5.4.0-1' is version_compare('5.4.0', 'gt') }}", true},
		{"{{ 'x' if missing is undefined else 'y' }}", "x"},
		{"{{ omitted | default(omit) }}", "OMIT"},
	}
	vars["omit"] = "OMIT"
	for _, c := range cases {
		got, err := e.RenderString(c.in, vars)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestFilterErrors(t *testing.T) {
	e := New()
	for in, want := range map[string]string{
		"{{ missing | mandatory }}":              "missing",
		"{{ missing | mandatory('set it') }}":    "set it",
		"{{ 'x' | hash('nope') }}":               "nope",
		"{{ '1.a' is version('1.1', '>') }}":     "mix",
		"{{ '1' is version('1.1', '>', true) }}": "invalid version",
	} {
		_, err := e.RenderString(in, testVars())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to mention %q", in, err, want)
		}
	}
	if _, err := e.RenderString("{{ missing | mandatory }}", testVars()); !errors.Is(err, ErrUndefined) {
		t.Errorf("mandatory: %v, want ErrUndefined", err)
	}
}

// TestIPFilters: ansible.utils' ipaddr family as kubespray uses it.
func TestIPFilters(t *testing.T) {
	e := New()
	vars := map[string]any{"svc": "10.233.0.0/18", "v6": "fd85:ee78:d8a6:8607::1:0/112"}
	cases := map[string]any{
		`{{ svc | ansible.utils.ipaddr('net') | ansible.utils.ipaddr(3) | ansible.utils.ipaddr('address') }}`: "10.233.0.3",
		`{{ svc | ipaddr('prefix') }}`:                             18,
		`{{ '10.0.0.5' | ipaddr('net') }}`:                         false,
		`{{ '10.0.0.5' | ipaddr(svc) }}`:                           false,
		`{{ '10.233.1.5' | ipaddr(svc) }}`:                         "10.233.1.5",
		`{{ ['x', '1.2.3.4', 'fe80::1'] | ipv4 }}`:                 []any{"1.2.3.4"},
		`{{ 'fe80::1' | ansible.utils.ipwrap }}`:                   "[fe80::1]",
		`{{ '1.2.3.4' | ipwrap }}`:                                 "1.2.3.4",
		`{{ v6 | ipaddr('net') | ipaddr(1) | ipaddr('address') }}`: "fd85:ee78:d8a6:8607::1:1",
		`{{ '192.168.1.0/24' | ipaddr('netmask') }}`:               "255.255.255.0",
		`{{ '192.168.1.0/24' | ipaddr('broadcast') }}`:             "192.168.1.255",
		`{{ '192.168.1.0/24' | ipaddr(-1) }}`:                      "192.168.1.255/24",
	}
	for in, want := range cases {
		got, err := e.Render(in, vars)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, %v; want %#v", in, got, err, want)
		}
	}
}

// TestPasswordHash: SHA-crypt hashes equal glibc's crypt(3) (Python's
// crypt.crypt gave the expected values); bcrypt verifies.
func TestPasswordHash(t *testing.T) {
	e := New()
	cases := map[string]string{
		`{{ 'secret' | password_hash('sha512', 'saltsalt') }}`:       "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1",
		`{{ 'secret' | password_hash('sha256', 'saltsalt', 5000) }}`: "$5$rounds=5000$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA",
	}
	for in, want := range cases {
		got, err := e.Render(in, nil)
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %s", in, got, err, want)
		}
	}
	got, err := e.Render(`{{ 'pw' | password_hash('bcrypt') }}`, nil)
	if err != nil || !strings.HasPrefix(String(got), "$2a$") {
		t.Errorf("bcrypt = %v, %v", got, err)
	}
}
