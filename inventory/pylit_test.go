package inventory

import (
	"reflect"
	"testing"
)

// TestINIValue checks Python literal evaluation (ast.literal_eval) of INI
// values; anything that is not a literal stays the original string.
func TestINIValue(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{"42", 42},
		{"-7", -7},
		{"- 7", -7},
		{"+3", 3},
		{"--1", "--1"},
		{"0", 0},
		{"00", 0},
		{"012", "012"},
		{"1_000", 1000},
		{"1__0", "1__0"},
		{"0x1F", 31},
		{"0o17", 15},
		{"0b101", 5},
		{"1.5", 1.5},
		{".5", 0.5},
		{"1e3", 1000.0},
		{"1E-2", 0.01},
		{"1e999", "1e999"},
		{"1j", "1j"},
		{"99999999999999999999", "99999999999999999999"},
		{"True", true},
		{"False", false},
		{"None", nil},
		{"true", "true"},
		{"FALSE", "FALSE"},
		{"yes", "yes"},
		{"'single'", "single"},
		{`"double"`, "double"},
		{`'a' "b"`, "ab"},
		{`'''triple'''`, "triple"},
		{`"tab\there"`, "tab\there"},
		{`"\x41\101\u00e9"`, "AAé"},
		{`r"raw\n"`, `raw\n`},
		{`b"bytes"`, "bytes"},
		{`"mixed" b"no"`, `"mixed" b"no"`},
		{`"\N{DASH}"`, `"\N{DASH}"`},
		{`f"x"`, `f"x"`},
		{`"unterminated`, `"unterminated`},
		{"[1, 'a', [2]]", []any{1, "a", []any{2}}},
		{"[1, 2, ]", []any{1, 2}},
		{"[]", []any{}},
		{"(1, 2)", []any{1, 2}},
		{"(1,)", []any{1}},
		{"(1)", 1},
		{"()", []any{}},
		{"{'a': 1, 2: [3], True: None}", map[string]any{"a": 1, "2": []any{3}, "true": nil}},
		{"{}", map[string]any{}},
		{"{1, 2, 1}", []any{1, 2}},
		{"{[1]: 2}", "{[1]: 2}"},
		{"{'a' 1}", "{'a' 1}"},
		{"8080 # port", 8080},
		{"  12", 12},
		{"1 + 2", "1 + 2"},
		{"/var/lib/x", "/var/lib/x"},
		{"hello world", "hello world"},
		{"", ""},
		{"foo(1)", "foo(1)"},
		{"1.2.3.4", "1.2.3.4"},
		{"10.0.0.1:22", "10.0.0.1:22"},
	}
	for _, c := range cases {
		if got := iniValue(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("iniValue(%q) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestINIValueDeepNesting(t *testing.T) {
	deep := ""
	for range 500 {
		deep += "["
	}
	if got := iniValue(deep); got != deep {
		t.Errorf("deep nesting should stay a string")
	}
}
