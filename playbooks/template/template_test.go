package template

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func testVars() map[string]any {
	return map[string]any{
		"name":               "web",
		"n":                  3,
		"list":               []any{3, 1, 2, 1},
		"users":              []any{map[string]any{"name": "a", "admin": true}, map[string]any{"name": "b", "admin": false}},
		"d":                  map[string]any{"k": "v", "nested": map[string]any{"x": 1}},
		"res":                map[string]any{"rc": 0, "changed": true, "failed": false, "stdout": "ok\n"},
		"empty":              "",
		"nil":                nil,
		"json":               `{"a": [1, 2]}`,
		"hostvars":           map[string]any{"h1": map[string]any{"ip": "10.0.0.1"}},
		"inventory_hostname": "h1",
	}
}

func TestRender(t *testing.T) {
	e := New()
	cases := []struct {
		in   string
		want any
	}{
		{"plain", "plain"},
		{"{{ n }}", 3},
		{"{{ list }}", []any{3, 1, 2, 1}},
		{"x={{ n }} y={{ name }}", "x=3 y=web"},
		{"{{ missing | default(5) }}", 5},
		{"{{ d.missing | default('z') }}", "z"},
		{"{{ missing.deep.er | default('z') }}", "z"},
		{"{{ nil | default('z') }}", nil},
		{"{{ empty | default('z', true) }}", "z"},
		{"{{ list | join(',') }}", "3,1,2,1"},
		{"{{ list | unique | sort | join('-') }}", "1-2-3"},
		{"{{ list | length }}", 4},
		{"{{ '42' | int + 1 }}", 43},
		{"{{ name | upper }}", "WEB"},
		{"{{ ' a ' | trim }}", "a"},
		{"{{ 'a-b' | replace('-', '_') }}", "a_b"},
		{"{{ 'a,b' | split(',') | last }}", "b"},
		{"{{ list | first }}", 3},
		{"{{ list | max }}", 3},
		{"{{ list | min }}", 1},
		{"{{ list | sum }}", 7},
		{"{{ json | from_json }}", map[string]any{"a": []any{1, 2}}},
		{"{{ d | to_json }}", `{"k":"v","nested":{"x":1}}`},
		{"{{ 'abc123' | regex_search('[0-9]+') }}", "123"},
		{"{{ d | combine({'k': 'w'}) }}", map[string]any{"k": "w", "nested": map[string]any{"x": 1}}},
		{"{{ {'a': 1} | dict2items }}", []any{map[string]any{"key": "a", "value": 1}}},
		{"{{ [{'key': 'a', 'value': 1}] | items2dict }}", map[string]any{"a": 1}},
		{"{{ users | map(attribute='name') | join(',') }}", "a,b"},
		{"{{ users | selectattr('admin') | map(attribute='name') | list }}", []any{"a"}},
		{"{{ list | select('even') | list }}", []any{2}},
		{"{{ list | reject('equalto', 1) | list }}", []any{3, 2}},
		{"{{ name ~ '-' ~ n }}", "web-3"},
		{"{{ missing is defined }}", false},
		{"{{ name is defined }}", true},
		{"{{ d.missing is not defined }}", true},
		{"{{ res is changed }}", true},
		{"{{ res is failed }}", false},
		{"{{ res is succeeded and n == 3 }}", true},
		{"{{ 'b' in ['a', 'b'] }}", true},
		{"{{ not (n > 2) }}", false},
		{"{{ 'yes' if n > 2 else 'no' }}", "yes"},
		{"{{ True and None is none }}", true},
		{"{{ hostvars[inventory_hostname].ip }}", "10.0.0.1"},
		{"{{ hostvars['h1']['ip'] }}", "10.0.0.1"},
		{"{{ res.stdout | trim | length }}", 2},
		{"{{ (res.stdout | trim) == 'ok' }}", true},
		{"{{ n | string }}", "3"},
		{"{{ 'yes' | bool }}", true},
		{"{{ {'b': {'x': 1}} | combine({'b': {'y': 2}}, recursive=true) }}", map[string]any{"b": map[string]any{"x": 1, "y": 2}}},
		{"{{ d | to_yaml }}", "k: v\nnested:\n    x: 1"},
		{"{# c #}a{{ '}}' }}", "a}}"},
		{"{{ {'a': {'b': 1}}.a.b }}", 1},
		{"{{ '1.10' is version('1.9', '>') }}", true},
	}
	for _, c := range cases {
		got, err := e.RenderString(c.in, testVars())
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestUndefined(t *testing.T) {
	e := New()
	for _, in := range []string{"{{ missing }}", "x{{ missing + 1 }}", "{{ d.nope }}", "{{ list[10] }}"} {
		_, err := e.RenderString(in, testVars())
		if !errors.Is(err, ErrUndefined) {
			t.Errorf("%s: err = %v, want ErrUndefined", in, err)
		}
	}
	_, err := e.Eval("d.nope.x == 1", testVars())
	if err == nil || !strings.Contains(err.Error(), `"d.nope"`) {
		t.Errorf("error should name d.nope: %v", err)
	}
}

func TestSyntaxErrors(t *testing.T) {
	e := New()
	for _, in := range []string{"{{ x | nosuchfilter }}", "{{ x is nosuchtest }}", "{{ (x }}", "{{ x", "{% if x %}y", "{{ 'abc }}", "{% for %}{% endfor %}"} {
		if err := e.CheckTemplate(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("%s: err = %v, want ErrSyntax", in, err)
		}
	}
}

func TestTruth(t *testing.T) {
	e := New()
	for src, want := range map[string]bool{
		"n == 3": true, "res.rc != 0": false, "empty": false, "list": true, "missing is undefined": true,
		"{{ n > 1 }}": true, "name == 'web' and not res is failed": true,
		"res.stdout.find('ok') == 0": true, "n in (0, 3)": true, "n not in (0, 5)": true,
	} {
		got, err := e.Truth(src, testVars())
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", src, got, err, want)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	e := New()
	vars := testVars()
	for b.Loop() {
		if _, err := e.RenderString("x={{ list | unique | join(',') }} {{ name }}", vars); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIndexErrorMessage: an out-of-range subscript of a method's result
// says so instead of naming gonja's internal form of the call.
func TestIndexErrorMessage(t *testing.T) {
	_, err := New().Render("{{ out.split()[2] }}", map[string]any{"out": "a b"})
	if !errors.Is(err, ErrUndefined) || !strings.Contains(err.Error(), "no element 2 in the result of a call") {
		t.Errorf("err = %v", err)
	}
}
