package template

import (
	"testing"
	"time"
)

// TestBounded: inputs that exhausted memory or hung (found by FuzzTemplate)
// end quickly with a value or an error.
func TestBounded(t *testing.T) {
	e := New()
	for _, s := range []string{"{{ 'a' * 999999999999 }}", "{{ [1] * 999999999999 }}", "{{ range(99999999999) | list | length }}",
		"{{ x * 9999999999999999 }}", "{{ {", "{{ x if }}", "{% for %}", "{{ x ** 99999999 }}", "{{ 'ab'[::0] }}"} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = e.RenderString(s, map[string]any{"x": 1})
			_, _ = e.Eval(s, map[string]any{"x": 1})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%q still running after 10s", s)
		}
	}
}
