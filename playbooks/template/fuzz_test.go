package template

import "testing"

// FuzzTemplate checks that compiling and rendering arbitrary templates
// never panics.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"{{ x | default(1) }}", "a{{ 'b' ~ c }}d", "{{ l | map(attribute='n') | join(',') }}",
		"{{ x is not defined and y is version('1.2', '>=') }}", "{{ {'a': [1, 2]}.a[0] if x else none }}",
		"{# c #}{{ d | combine({'k': 1}, recursive=True) }}", "{{ x | regex_replace('(a)', '\\\\1') }}",
		"{% for i in l %}{{ i.n }}{% if x %},{% endif %}{% endfor %}", "{{ ('%s-%d' % (c, x)).split('-') }}",
		"{{ x in (0, 5) and c.upper().startswith('C') }}", "{{ '1.2' is version('1.10', '<', strict=true) }}",
	} {
		f.Add(s)
	}
	e := New()
	vars := map[string]any{"x": 1, "c": "c", "l": []any{map[string]any{"n": 1}}, "d": map[string]any{}}
	f.Fuzz(func(t *testing.T, s string) {
		if e.CheckTemplate(s) == nil {
			_, _ = e.RenderString(s, vars)
		}
		if e.Check(s) == nil {
			_, _ = e.Eval(s, vars)
		}
	})
}
