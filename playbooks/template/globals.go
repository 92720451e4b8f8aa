package template

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	gexec "github.com/nikolalohinski/gonja/v2/exec"
)

// ErrLookup means that a lookup() plugin failed or does not exist.
var ErrLookup = fmt.Errorf("lookup failed")

// pipeTimeout bounds lookup('pipe', ...) commands.
const pipeTimeout = 30 * time.Second

// globalFunctions are the callables every template sees besides the
// variables: __mod (the rewritten `%`), lookup and query/q.
func globalFunctions(e *Engine) map[string]any {
	return map[string]any{
		"__mod": func(va *gexec.VarArgs) *gexec.Value {
			if len(va.Args) != 2 {
				return gexec.AsValue(fmt.Errorf("%% needs two operands"))
			}
			out, err := modulo(goValue(va.Args[0]), goValue(va.Args[1]))
			if err != nil {
				return gexec.AsValue(err)
			}
			return gexec.AsValue(out)
		},
		"__div": binary(divide(false)),
		"__mul": binary(multiply),
		"__not": func(va *gexec.VarArgs) *gexec.Value {
			if len(va.Args) != 1 {
				return gexec.AsValue(fmt.Errorf("not needs one operand"))
			}
			if va.Args[0].IsError() {
				return va.Args[0]
			}
			return gexec.AsValue(!Truthy(goValue(va.Args[0])))
		},
		"now": func(va *gexec.VarArgs) *gexec.Value {
			t := time.Now()
			if v, ok := va.KwArgs["utc"]; ok && v.IsTrue() || len(va.Args) > 0 && va.Args[0].IsTrue() {
				t = t.UTC()
			}
			if f, ok := va.KwArgs["fmt"]; ok {
				return gexec.AsValue(strftime(t, f.String()))
			}
			return gexec.AsValue(nowValue(t))
		},
		"range": func(va *gexec.VarArgs) *gexec.Value {
			p := make([]any, len(va.Args))
			for i, a := range va.Args {
				p[i] = goValue(a)
			}
			out, err := fRange(p...)
			if err != nil {
				return gexec.AsValue(err)
			}
			return gexec.AsValue(out)
		},
		"__floordiv": binary(divide(true)),
		"lookup":     func(ev *gexec.Evaluator, va *gexec.VarArgs) *gexec.Value { return e.lookup(ev, va, false) },
		"query":      func(ev *gexec.Evaluator, va *gexec.VarArgs) *gexec.Value { return e.lookup(ev, va, true) },
		"q":          func(ev *gexec.Evaluator, va *gexec.VarArgs) *gexec.Value { return e.lookup(ev, va, true) },
	}
}

func binary(f func(a, b any) (any, error)) func(va *gexec.VarArgs) *gexec.Value {
	return func(va *gexec.VarArgs) *gexec.Value {
		if len(va.Args) != 2 {
			return gexec.AsValue(fmt.Errorf("an operator needs two operands"))
		}
		out, err := f(goValue(va.Args[0]), goValue(va.Args[1]))
		if err != nil {
			return gexec.AsValue(err)
		}
		return gexec.AsValue(out)
	}
}

// maxRepeat bounds the text or list that `*` may build.
const maxRepeat = 16 << 20

// multiply is Python's *: numbers multiply, a string or list times an int repeats.
func multiply(a, b any) (any, error) {
	if _, ok := b.(string); ok {
		a, b = b, a
	}
	if _, ok := b.([]any); ok {
		a, b = b, a
	}
	switch x := a.(type) {
	case string:
		n, ok := toInt(b)
		if !ok {
			return nil, fmt.Errorf("can't multiply a string by %T", b)
		}
		if n <= 0 {
			return "", nil
		}
		if len(x)*n > maxRepeat || n > maxRepeat {
			return nil, fmt.Errorf("string repeated %d times is too long", n)
		}
		return strings.Repeat(x, n), nil
	case []any:
		n, ok := toInt(b)
		if !ok {
			return nil, fmt.Errorf("can't multiply a list by %T", b)
		}
		if n > 0 && (len(x)*n > maxRepeat || n > maxRepeat) {
			return nil, fmt.Errorf("list repeated %d times is too long", n)
		}
		out := []any{}
		for range max(n, 0) {
			out = append(out, x...)
		}
		return out, nil
	}
	x, okA := toInt(a)
	y, okB := toInt(b)
	_, fa := a.(float64)
	_, fb := b.(float64)
	if okA && okB && !fa && !fb {
		return x * y, nil
	}
	fx, ok1 := number(a)
	fy, ok2 := number(b)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("unsupported operand types for *: %T and %T", a, b)
	}
	return fx * fy, nil
}

// divide is Python's / (always a float) or // (floored; an int for ints).
func divide(floor bool) func(a, b any) (any, error) {
	return func(a, b any) (any, error) {
		x, ok1 := number(a)
		y, ok2 := number(b)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("unsupported operand types for /: %T and %T", a, b)
		}
		if y == 0 {
			return nil, fmt.Errorf("division by zero")
		}
		if !floor {
			return x / y, nil
		}
		q := math.Floor(x / y)
		_, fa := a.(float64)
		_, fb := b.(float64)
		if fa || fb {
			return q, nil
		}
		return int(q), nil
	}
}

// modulo is Python's %: remainder of numbers, printf-style formatting of a string.
func modulo(a, b any) (any, error) {
	if s, ok := a.(string); ok {
		return pyFormat(s, b)
	}
	x, okA := toInt(a)
	y, okB := toInt(b)
	if _, isF := a.(float64); okA && okB && !isF {
		if _, isF := b.(float64); !isF {
			if y == 0 {
				return nil, fmt.Errorf("integer modulo by zero")
			}
			r := x % y
			if r != 0 && (r < 0) != (y < 0) {
				r += y
			}
			return r, nil
		}
	}
	fa, ok1 := number(a)
	fb, ok2 := number(b)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("unsupported operand types for %%: %T and %T", a, b)
	}
	if fb == 0 {
		return nil, fmt.Errorf("float modulo by zero")
	}
	r := fa - fb*float64(int(fa/fb))
	if r != 0 && (r < 0) != (fb < 0) {
		r += fb
	}
	return r, nil
}

// pyFormat implements Python's "fmt" % args for the common conversions
// (s, r, d, i, f, x, o, e, g, %) with flags, width, precision and %(name)s.
func pyFormat(format string, arg any) (string, error) {
	var positional []any
	named, _ := arg.(map[string]any)
	if l, ok := arg.([]any); ok {
		positional = l
	} else if named == nil {
		positional = []any{arg}
	}
	var b strings.Builder
	next := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		var key string
		if j < len(format) && format[j] == '(' {
			end := strings.IndexByte(format[j:], ')')
			if end < 0 {
				return "", fmt.Errorf("format %q: incomplete key", format)
			}
			key = format[j+1 : j+end]
			j += end + 1
		}
		start := j
		for j < len(format) && strings.IndexByte("-+ #0123456789.", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			return "", fmt.Errorf("format %q: incomplete format", format)
		}
		spec, verb := format[start:j], format[j]
		i = j
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		var v any
		switch {
		case key != "":
			if named == nil {
				return "", fmt.Errorf("format %q requires a mapping", format)
			}
			v = named[key]
		case next < len(positional):
			v = positional[next]
			next++
		default:
			return "", fmt.Errorf("format %q: not enough arguments", format)
		}
		s, err := formatOne(spec, verb, v)
		if err != nil {
			return "", fmt.Errorf("format %q: %w", format, err)
		}
		b.WriteString(s)
	}
	if named == nil && next < len(positional) {
		return "", fmt.Errorf("format %q: not all arguments converted", format)
	}
	return b.String(), nil
}

func formatOne(spec string, verb byte, v any) (string, error) {
	switch verb {
	case 's', 'r':
		return fmt.Sprintf("%"+spec+"s", String(v)), nil
	case 'd', 'i', 'u':
		n, ok := number(v)
		if !ok {
			return "", fmt.Errorf("%%%c needs a number, not %T", verb, v)
		}
		return fmt.Sprintf("%"+spec+"d", int(n)), nil
	case 'x', 'X', 'o':
		n, ok := toInt(v)
		if !ok {
			return "", fmt.Errorf("%%%c needs an integer, not %T", verb, v)
		}
		return fmt.Sprintf("%"+spec+string(verb), n), nil
	case 'f', 'F', 'e', 'E', 'g', 'G':
		n, ok := number(v)
		if !ok {
			return "", fmt.Errorf("%%%c needs a number, not %T", verb, v)
		}
		if verb == 'F' {
			verb = 'f'
		}
		if !strings.Contains(spec, ".") && (verb == 'f' || verb == 'e' || verb == 'E') {
			spec += ".6"
		}
		return fmt.Sprintf("%"+spec+string(verb), n), nil
	}
	return "", fmt.Errorf("unsupported format character %q", verb)
}

// lookup runs a lookup plugin on the controller: env, file, template, pipe,
// vars, items/list, first_found. lookup() joins several results with ","
// (Ansible's wantlist=False); query() returns a list.
func (e *Engine) lookup(ev *gexec.Evaluator, va *gexec.VarArgs, list bool) *gexec.Value {
	if len(va.Args) == 0 {
		return gexec.AsValue(fmt.Errorf("%w: lookup needs a plugin name", ErrLookup))
	}
	plugin := String(goValue(va.Args[0]))
	var terms []any
	for _, a := range va.Args[1:] {
		if a.IsError() {
			return a
		}
		v := goValue(a)
		if l, ok := v.([]any); ok && plugin != "vars" {
			terms = append(terms, l...)
			continue
		}
		terms = append(terms, v)
	}
	kw := map[string]any{}
	for k, v := range va.KwArgs {
		kw[k] = goValue(v)
	}
	results, err := e.runLookup(ev, plugin, terms, kw)
	if err != nil {
		return gexec.AsValue(fmt.Errorf("%w: lookup(%q): %w", ErrLookup, plugin, err))
	}
	if list || Truthy(kw["wantlist"]) {
		return gexec.AsValue(results)
	}
	if len(results) == 1 {
		return gexec.AsValue(results[0])
	}
	parts := make([]string, len(results))
	for i, r := range results {
		parts[i] = String(r)
	}
	return gexec.AsValue(strings.Join(parts, ","))
}

func (e *Engine) runLookup(ev *gexec.Evaluator, plugin string, terms []any, kw map[string]any) ([]any, error) {
	ctx := ev.Environment.Context
	var out []any
	switch plugin {
	case "env", "ansible.builtin.env":
		for _, t := range terms {
			v, ok := os.LookupEnv(String(t))
			if !ok && kw["default"] != nil {
				out = append(out, kw["default"])
				continue
			}
			out = append(out, v)
		}
	case "file", "ansible.builtin.file", "template", "ansible.builtin.template":
		for _, t := range terms {
			path := lookupPath(ctx, String(t), plugin)
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			s := string(data)
			if strings.HasSuffix(plugin, "template") {
				vars := contextVars(ctx)
				r, err := e.RenderText(path, s, vars)
				if err != nil {
					return nil, err
				}
				s = r
			} else if v, ok := kw["rstrip"]; v == nil || !ok || Truthy(v) {
				s = strings.TrimRight(s, " \t\r\n")
			}
			out = append(out, s)
		}
	case "pipe", "ansible.builtin.pipe":
		for _, t := range terms {
			b, err := runPipe(String(t))
			if err != nil {
				return nil, err
			}
			out = append(out, strings.TrimRight(b, "\n"))
		}
	case "vars", "ansible.builtin.vars":
		for _, t := range terms {
			v, ok := ctx.Get(String(t))
			if !ok {
				if d, has := kw["default"]; has {
					out = append(out, d)
					continue
				}
				return nil, &undefinedError{name: String(t)}
			}
			out = append(out, v)
		}
	case "items", "list", "ansible.builtin.items", "ansible.builtin.list":
		out = terms
	case "first_found", "ansible.builtin.first_found":
		return firstFound(ctx, terms, kw)
	default:
		if f, ok := moreLookups[strings.TrimPrefix(plugin, "ansible.builtin.")]; ok {
			return f(ctx, terms, kw)
		}
		return nil, fmt.Errorf("no lookup plugin named %q (known: env, file, template, pipe, vars, items, list, first_found, %s)", plugin, strings.Join(lookupNames(), ", "))
	}
	return out, nil
}

// runPipe runs a controller command for the pipe and lines lookups.
func runPipe(cmd string) (string, error) {
	c, cancel := context.WithTimeout(context.Background(), pipeTimeout)
	defer cancel()
	b, err := exec.CommandContext(c, "sh", "-c", cmd).Output()
	if err != nil {
		return "", fmt.Errorf("%q: %w", cmd, err)
	}
	return string(b), nil
}

// lookupPath resolves a relative path against the role's or playbook's
// directory, as Ansible searches (files/ or templates/ first).
func lookupPath(ctx *gexec.Context, p, plugin string) string {
	if filepath.IsAbs(p) {
		return p
	}
	sub := "files"
	if strings.HasSuffix(plugin, "template") {
		sub = "templates"
	} else if plugin == "vars" {
		sub = "vars"
	}
	for _, base := range []string{"role_path", "playbook_dir"} {
		if d, ok := ctx.Get(base); ok {
			dir := String(d)
			for _, cand := range []string{filepath.Join(dir, sub, p), filepath.Join(dir, p)} {
				if _, err := os.Stat(cand); err == nil {
					return cand
				}
			}
		}
	}
	return p
}

// contextVars collects the variables visible from a lookup (for template).
func contextVars(ctx *gexec.Context) map[string]any {
	vars := map[string]any{}
	if v, ok := ctx.Get(ownVarsKey); ok {
		if m, ok := v.(map[string]any); ok {
			return m
		}
	}
	return vars
}

// nowValue is what now() returns: the datetime's fields, strftime and isoformat.
func nowValue(t time.Time) map[string]any {
	return map[string]any{
		"year": t.Year(), "month": int(t.Month()), "day": t.Day(), "hour": t.Hour(), "minute": t.Minute(),
		"second": t.Second(), "microsecond": t.Nanosecond() / 1000,
		"strftime":  func(f string) string { return strftime(t, f) },
		"isoformat": func() string { return t.Format("2006-01-02T15:04:05.000000") },
		"timestamp": func() float64 { return float64(t.UnixNano()) / 1e9 },
	}
}

// strftime formats t with Python's common directives.
func strftime(t time.Time, f string) string {
	layouts := map[byte]string{'Y': "2006", 'y': "06", 'm': "01", 'd': "02", 'H': "15", 'I': "03", 'M': "04", 'S': "05",
		'p': "PM", 'z': "-0700", 'Z': "MST", 'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January"}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		c := f[i]
		switch l, ok := layouts[c]; {
		case ok:
			b.WriteString(t.Format(l))
		case c == 'f':
			fmt.Fprintf(&b, "%06d", t.Nanosecond()/1000)
		case c == 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case c == 's':
			fmt.Fprintf(&b, "%d", t.Unix())
		case c == 'w':
			fmt.Fprintf(&b, "%d", int(t.Weekday()))
		case c == '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(c)
		}
	}
	return b.String()
}
