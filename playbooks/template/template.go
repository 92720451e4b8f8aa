// Package template evaluates Ansible-style templates (`{{ expr }}`, `{% %}`
// statements) and bare Jinja2 expressions with Jinja2's semantics, on
// github.com/nikolalohinski/gonja/v2.
//
// Ansible's filters and tests are registered over gonja's own; every parsed
// template is cached in the Engine. Variables are looked up strictly: a
// missing variable or attribute is an error naming it, unless it is the value
// of `default`/`mandatory` or the subject of `is defined`. A panic inside
// gonja becomes an error naming the template.
package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
)

// Errors returned by the engine; they are wrapped with the expression concerned.
var (
	// ErrUndefined means that an expression used a variable or attribute that does not exist.
	ErrUndefined = errors.New("undefined variable")
	// ErrSyntax means that an expression or template does not compile.
	ErrSyntax = errors.New("template syntax error")
	// ErrEval means that a compiled expression failed while running.
	ErrEval = errors.New("template evaluation error")
)

// maxDepth bounds recursive rendering of nested values.
const maxDepth = 64

// Undefined is the value of a variable that could not be resolved (Name
// carries the reason). Such variables are absent from the templates' view:
// `is defined` is false and any other use fails naming Name.
type Undefined struct{ Name string }

// Engine parses and evaluates templates; its caches make it cheap to
// evaluate the same expression many times. It is safe for concurrent use.
type Engine struct {
	cfg     *config.Config
	env     *exec.Environment
	globals *exec.Context
	exprs   sync.Map // bare expression source → *expression
	tmpls   sync.Map // template string → *parsed
}

// New returns an engine with Jinja2's and Ansible's filters and tests.
func New() *Engine {
	cfg := config.New()
	cfg.StrictUndefined = true
	cfg.KeepTrailingNewline = true
	cfg.TrimBlocks = true // Ansible's templar and template module default
	e := &Engine{cfg: cfg}
	e.env = environment(e)
	e.globals = e.env.Context
	return e
}

// IsTemplate reports whether s contains a `{{ }}` expression or a `{% %}` statement.
func IsTemplate(s string) bool { return strings.Contains(s, "{{") || strings.Contains(s, "{%") }

// Check parses a bare expression, reporting syntax errors only.
func (e *Engine) Check(src string) error {
	_, err := e.expression(src)
	return err
}

// CheckTemplate parses a template.
func (e *Engine) CheckTemplate(s string) error {
	_, err := e.parse(s)
	return err
}

// Eval evaluates a bare expression (as in `when:`) against vars.
func (e *Engine) Eval(src string, vars map[string]any) (v any, err error) {
	x, err := e.expression(src)
	if err != nil {
		return nil, err
	}
	defer guard(src, &err)
	return e.evalExpr(x, vars)
}

// Truth evaluates a bare expression and converts the result with Truthy.
// A condition written as a template ("{{ x }}") is rendered first.
func (e *Engine) Truth(src string, vars map[string]any) (bool, error) {
	var v any
	var err error
	if IsTemplate(src) {
		v, err = e.RenderString(src, vars)
	} else {
		v, err = e.Eval(src, vars)
	}
	if err != nil {
		return false, err
	}
	return Truthy(v), nil
}

// guard turns a panic into an error naming the template.
func guard(src string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %q: %v", ErrEval, src, r)
	}
}

// Render templates every string inside v (maps and lists recursively) and
// returns a new value; v itself is not modified.
func (e *Engine) Render(v any, vars map[string]any) (any, error) {
	return e.render(v, vars, 0)
}

func (e *Engine) render(v any, vars map[string]any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: value nested deeper than %d", ErrEval, maxDepth)
	}
	switch x := v.(type) {
	case string:
		return e.RenderString(x, vars)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			r, err := e.render(val, vars, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			r, err := e.render(val, vars, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// NeedsRender reports whether v contains a template string anywhere.
func NeedsRender(v any) bool {
	switch x := v.(type) {
	case string:
		return IsTemplate(x)
	case map[string]any:
		for _, val := range x {
			if NeedsRender(val) {
				return true
			}
		}
	case []any:
		for _, val := range x {
			if NeedsRender(val) {
				return true
			}
		}
	}
	return false
}

// RenderString renders one template string. A string that is exactly one
// `{{ expr }}` yields the expression's value with its type (Ansible's native
// rule); a string with only `{{ }}` expressions interpolates them with
// String; a string with `{% %}` statements is rendered by Jinja as a whole.
func (e *Engine) RenderString(s string, vars map[string]any) (out any, err error) {
	if !IsTemplate(s) && !strings.Contains(s, "{#") {
		return s, nil
	}
	p, err := e.parse(s)
	if err != nil {
		return nil, err
	}
	defer guard(s, &err)
	if p.full != nil {
		return e.execute(s, p.full, vars)
	}
	if len(p.parts) == 1 && p.parts[0].expr != nil {
		return e.evalExpr(p.parts[0].expr, vars)
	}
	var b strings.Builder
	for _, part := range p.parts {
		if part.expr == nil {
			b.WriteString(part.text)
			continue
		}
		v, err := e.evalExpr(part.expr, vars)
		if err != nil {
			return nil, err
		}
		b.WriteString(String(v))
	}
	return b.String(), nil
}

// RenderText renders a template file's text (the template module) with the
// whole language; the result is always a string.
func (e *Engine) RenderText(name, s string, vars map[string]any) (out string, err error) {
	p, err := e.parse(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	defer guard(name, &err)
	if p.full == nil {
		v, err := e.RenderString(s, vars)
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if len(p.parts) == 1 && p.parts[0].expr != nil {
			return String(v), nil
		}
		return v.(string), nil
	}
	v, err := e.execute(name, p.full, vars)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// String converts a value to its text in an interpolated template: strings
// as they are, nil as "", maps and lists as JSON.
func String(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []byte:
		return string(x)
	case fmt.Stringer:
		return x.String()
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.Struct:
		if b, err := json.Marshal(v); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

// Truthy converts a value to a condition with Python's rules: nil, false,
// zero, "" and empty collections are false; everything else is true.
func Truthy(v any) bool {
	switch x := v.(type) {
	case nil, Undefined:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case int:
		return x != 0
	case float64:
		return x != 0
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.String:
		return rv.Len() > 0
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return rv.Uint() != 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() != 0
	case reflect.Pointer, reflect.Interface:
		return !rv.IsNil()
	}
	return true
}

// Vars merges layers of variables, later layers winning, into a new map.
func Vars(layers ...map[string]any) map[string]any {
	n := 0
	for _, l := range layers {
		n += len(l)
	}
	out := make(map[string]any, n)
	for _, l := range layers {
		maps.Copy(out, l)
	}
	return out
}
