package template

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestJinja covers what the expr-lang translation could not do (issue 17):
// tuples, statements, Python methods, % formatting, escapes, inline if.
func TestJinja(t *testing.T) {
	e := New()
	vars := testVars()
	vars["line"] = "  Key = Value  "
	vars["flag"] = true
	vars["kv"] = map[string]any{"a": 1}
	cases := []struct {
		in   string
		want any
	}{
		{"{{ n in (0, 3) }}", true},
		{"{{ n not in (0, 5) }}", true},
		{"{{ (1, 2) }}", []any{1, 2}},
		{"{% for u in users %}{{ u.name }};{% endfor %}", "a;b;"},
		{"{% if n > 2 %}big{% else %}small{% endif %}", "big"},
		{"x{% for i in range(3) if i != 1 %}{{ i }}{% endfor %}", "x02"},
		{"{% set y = n * 2 %}{{ y }}", "6"},
		{"{{ 'a,b,c'.split(',') }}", []any{"a", "b", "c"}},
		{"{{ line.strip().lower() }}", "key = value"},
		{"{{ line.strip().split('=')[1].strip() }}", "Value"},
		{"{{ name.upper() }}", "WEB"},
		{"{{ name.startswith('we') and name.endswith('b') }}", true},
		{"{{ name.replace('w', 'W') }}", "Web"},
		{"{{ name.find('b') }}", 2},
		{"{{ name.find('z') }}", -1},
		// Python's: -1 on an empty string (register_logic.yml's stdout.find('hi') != -1),
		// start/end, rfind, code points.
		{"{{ ''.find('hi') }}", -1},
		{"{{ ''.find('') }}", 0},
		{"{{ 'abab'.find('b', 2) }}", 3},
		{"{{ 'abab'.rfind('a') }}", 2},
		{"{{ 'abab'.find('b', -1) }}", 3},
		{"{{ 'éab'.find('b') }}", 2},
		{"{{ d.get('k') }}", "v"},
		{"{{ d.get('nope', 'dflt') }}", "dflt"},
		{"{{ kv.keys() | list }}", []any{"a"}},
		{"{{ kv.values() | list }}", []any{1}},
		{"{{ '%s-%03d' % (name, n) }}", "web-003"},
		{"{{ '%(a)s!' % {'a': 'x'} }}", "x!"},
		{"{{ '%.1f%%' % 12.34 }}", "12.3%"},
		{"{{ 7 % 3 }}", 1},
		{"{% if '1.10' is version('1.9', '>', strict=false) %}new{% endif %}", "new"},
		{"{% if '1.10' is not version('1.9', operator='<') %}{{ 'x' is version('y', 'eq', version_type='loose') }}{% endif %}", "False"},
		{"{{ not 0 }}", true},
		{"{{ not list }}", false},
		{"{% if not empty %}e{% endif %}", "e"},
		{"{{ name.endswith(('x', 'b')) }}", true},
		{"{{ now().year > 2000 and now(fmt='%Y') | int > 2000 }}", true},
		{"{{ ('%s-%d' % (name, n)).startswith('web-3') }}", true},
		{"{{ ('%s' % name).upper() }}", "WEB"},
		{"{{ (name ~ ',x').split(',') }}", []any{"web", "x"}},
		{"{{ ('a b' | upper).split() }}", []any{"A", "B"}},
		{"{{ '  a  b c '.split() }}", []any{"a", "b", "c"}},
		{"{{ 'a b  c'.split(None, 1) }}", []any{"a", "b  c"}},
		{"{{ 'a=b=c'.split('=', 1) }}", []any{"a", "b=c"}},
		{"{{ 'a=b=c'.rsplit('=', 1) }}", []any{"a=b", "c"}},
		{"{{ [n % 2, (n * 2) // 4] }}", []any{1, 1}},
		{"{{ -7 % 3 }}", 2},
		{"{{ 'a\\tb' }}", "a\tb"},
		{`{{ "it's" }}`, "it's"},
		{"{{ 'yes' if flag else 'no' }}", "yes"},
		{"{{ 'yes' if missing is defined else 'no' }}", "no"},
		{"{{ [] if (rejoin | default(false)) else list }}", []any{3, 1, 2, 1}},
		{"{{ nil is none }}", true},
		{"{{ nil is defined }}", true},
		{"{{ missing is undefined }}", true},
		{"{{ list[1:3] }}", []any{1, 2}},
		{"{{ [1, 2] + [3] }}", []any{1, 2, 3}},
		{"{{ 7 // 2 }}", 3},
		{"{{- ' x ' -}}", " x "},
		{"a {{- ' b' }}", "a b"},
	}
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

// TestBuiltinExpressions pins the expressions the built-in playbooks use.
func TestBuiltinExpressions(t *testing.T) {
	e := New()
	vars := map[string]any{
		"plan":               map[string]any{"leave": []any{"h2"}, "join": []any{"h1"}, "survivor": "h3", "others": []any{"h2"}},
		"inventory_hostname": "h1",
		"hostvars":           map[string]any{"h3": map[string]any{"agent": map[string]any{"fingerprint": "ab:cd"}}},
	}
	for src, want := range map[string]any{
		"plan.leave | length > 0":                              true,
		"inventory_hostname in plan.join":                      true,
		"hostvars[plan.survivor].agent.fingerprint":            "ab:cd",
		"[] if (rejoin | default(false)) else plan.others":     []any{"h2"},
		"inventory_hostname not in plan.leave":                 true,
		"plan.missing | default([]) | length == 0":             true,
		"(plan.join + plan.leave) | unique | sort | join(',')": "h1,h2",
	} {
		got, err := e.Eval(src, vars)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, %v; want %#v", src, got, err, want)
		}
	}
}

// TestUndefinedNames checks that errors name the missing variable or attribute.
func TestUndefinedNames(t *testing.T) {
	e := New()
	vars := testVars()
	vars["broken"] = Undefined{Name: "broken (x is undefined)"}
	for in, name := range map[string]string{
		"{{ missing }}":                         `"missing"`,
		"{{ d.nested.nope }}":                   "nope",
		"{{ missing | upper }}":                 `"missing"`,
		"{{ broken }}":                          "x is undefined",
		"{% for x in missing %}{% endfor %}":    `"missing"`,
		"{{ [1] | map(attribute='z') | list }}": "z",
	} {
		_, err := e.RenderString(in, vars)
		if !errors.Is(err, ErrUndefined) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want ErrUndefined naming %s", in, err, name)
		}
	}
	if v, err := e.RenderString("{{ broken is defined }}", vars); err != nil || v != false {
		t.Errorf("broken is defined = %v, %v", v, err)
	}
}

// TestNoPanics: what made gonja panic is an error naming the expression.
func TestNoPanics(t *testing.T) {
	e := New()
	for _, in := range []string{"{{ 5 % 0 }}", "{{ '%d' % 'x' }}", "{{ '%s %s' % 'x' }}", "{{ 1 // 0 }}"} {
		_, err := e.RenderString(in, testVars())
		if err == nil || !strings.Contains(err.Error(), strings.Trim(in, "{} ")) {
			t.Errorf("%s: err = %v, want an error naming the expression", in, err)
		}
	}
}

// TestRenderText renders a template file with the whole language.
func TestRenderText(t *testing.T) {
	e := New()
	// trim_blocks, as Ansible's template module: the newline after a block tag goes.
	src := "# {{ name }}\n{% for u in users %}\nuser {{ u.name }}{{ ' admin' if u.admin else '' }}\n{% if not u.admin %}\nplain\n{% endif %}\n{% endfor %}\n"
	got, err := e.RenderText("t.j2", src, testVars())
	if err != nil {
		t.Fatal(err)
	}
	if want := "# web\nuser a admin\nuser b\nplain\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := e.RenderText("bad.j2", "{% for x in %}", nil); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "bad.j2") {
		t.Errorf("syntax error should name the file: %v", err)
	}
}

// TestLookup covers lookup/query on the controller.
func TestLookup(t *testing.T) {
	e := New()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t.j2"), []byte("{{ name }}!"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ORCH_LOOKUP_TEST", "v1")
	vars := testVars()
	vars["playbook_dir"] = dir
	for in, want := range map[string]any{
		"{{ lookup('env', 'ORCH_LOOKUP_TEST') }}":      "v1",
		"{{ lookup('file', 'f.txt') }}":                "hello",
		"{{ lookup('template', 't.j2') }}":             "web!",
		"{{ lookup('pipe', 'echo a; echo b') }}":       "a\nb",
		"{{ lookup('vars', 'name') }}":                 "web",
		"{{ query('items', [1, 2]) }}":                 []any{1, 2},
		"{{ q('env', 'ORCH_LOOKUP_TEST', 'NOPE_X') }}": []any{"v1", ""},
	} {
		got, err := e.RenderString(in, vars)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, %v; want %#v", in, got, err, want)
		}
	}
	if _, err := e.RenderString("{{ lookup('nope', 'x') }}", vars); !errors.Is(err, ErrEval) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown lookup: %v", err)
	}
}

// TestRenderFileIncludes: a template file includes another relative to its
// directory and imports its macros.
func TestRenderFileIncludes(t *testing.T) {
	e := New()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "part.j2"), []byte("part {{ name }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "macros.j2"), []byte("{% macro hi(x) %}hi {{ x }}{% endmacro %}"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "{% import 'macros.j2' as m %}\n{% include 'part.j2' %}\n{{ m.hi(n) }}\n"
	got, err := e.RenderFile(filepath.Join(dir, "main.j2"), src, testVars())
	if err != nil {
		t.Fatal(err)
	}
	if want := "part web\nhi 3\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := e.RenderFile(filepath.Join(dir, "bad.j2"), "{% include 'nope.j2' %}", testVars()); err == nil || !strings.Contains(err.Error(), "bad.j2") {
		t.Errorf("missing include: %v", err)
	}
}

// TestContextChaining: the variables are chained under the engine's own
// entries without being copied (gonja's Context still has its parent
// field) and are never written to.
func TestContextChaining(t *testing.T) {
	if !hasContextParent {
		t.Fatal("gonja's exec.Context has no parent field any more: every evaluation copies the globals")
	}
	e := New()
	vars := testVars()
	vars["broken"] = Undefined{Name: "broken (why)"}
	n := len(vars)
	for _, s := range []string{"{{ name | upper }}", "{{ range(2) | list }}", "{{ broken is defined }}", "{{ lookup('vars', 'name') }}"} {
		if _, err := e.RenderString(s, vars); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if len(vars) != n {
		t.Errorf("evaluation wrote into the variables: %d keys, had %d", len(vars), n)
	}
	vars["range"] = "mine"
	if v, err := e.RenderString("{{ range }}", vars); err != nil || v != "mine" {
		t.Errorf("a variable should shadow a global, as in Jinja: %v %v", v, err)
	}
}

// TestPythonGrammar: what gonja's grammar refuses and Jinja2 accepts, from
// the corpus (geerlingguy's roles, kubespray): Python string escapes in
// regexes, collection-qualified filter and test names, and conditional
// expressions inside parentheses, lists, arguments and else branches,
// evaluated lazily.
func TestPythonGrammar(t *testing.T) {
	e := New()
	vars := map[string]any{"v": "git version 2.39.5", "os": "RedHat", "l": []any{"a", "b"},
		"r": map[string]any{"stat": map[string]any{"exists": false}}}
	cases := []struct {
		in   string
		want any
	}{
		{`{{ v | regex_replace("^.*?([0-9\.]+)$", "\\1") }}`, "2.39.5"},
		{`{{ v | regex_search('\d+\.\d+') }}`, "2.39"},
		{`{{ 'a\tb\\c\x41' }}`, "a\tb\\cA"},
		{`{{ l | ansible.builtin.join(',') | ansible.builtin.upper }}`, "A,B"},
		{`{{ '2.1' is ansible.builtin.version('2.0', '>') }}`, true},
		{`{{ 'fedora' if os == 'Fedora' else 'rhel' if os == 'RedHat' else 'centos' }}`, "rhel"},
		{`x-{{ 'fedora' if os == 'Fedora' else 'rhel' if os == 'RedHat' else 'centos' }}/y`, "x-rhel/y"},
		{`{{ (1 if os == 'RedHat' else 2) + 10 }}`, 11},
		{`{{ [0 if false else 5, nothing.x if false else 'lazy'] }}`, []any{5, "lazy"}},
		{`{{ l | join(' if ' if true else ',') }}`, "a if b"},
		{`{{ not r.stat.exists }}`, true},
		{"{% if os == 'x' or\n      (os == 'RedHat' and\n '2.1' is version('2.0', '>')) %}yes{% endif %}", "yes"},
		{"{{ os == 'x' or\n os == 'RedHat' }}", true},
		{`{{ not r.stat.exists and not r['stat'].exists }}`, true},
		{`{{ not l | length }}`, false},
		{`{{ r.stat is not ansible.builtin.defined }}`, false},
		{`{{ 'install' if ('version 2' in v | default('') or 'x' in l | default([])) else 'upgrade' }}`, "install"},
		{`{% set x = 'p' if l else 'q' %}{{ x }}{% for i in l if i != 'a' %}{{ i }}{% endfor %}`, "pb"},
	}
	for _, c := range cases {
		got, err := e.Render(c.in, vars)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.in, got, c.want)
		}
	}
}
