package template

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unsafe"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	pkgerrors "github.com/pkg/errors"
)

// parsed is a template: either literal text and `{{ }}` expressions (parts),
// or, when it has `{% %}` statements, a whole gonja template (full).
type parsed struct {
	parts []part
	full  *exec.Template
}

type part struct {
	text string      // literal text (expr == nil)
	expr *expression // one `{{ }}`
}

// expression is one parsed `{{ expr [if cond [else alt]] }}`.
type expression struct {
	src    string
	output *nodes.Output
}

// Context entries the engine adds: the reasons of Undefined variables, and
// the variables themselves (for lookup('template')).
const (
	undefKey   = "__orch_undefined"
	ownVarsKey = "__orch_vars"
)

// stringLoader serves one template's source to gonja (no includes).
type stringLoader struct{ name, src string }

// Read, Resolve and Inherit implement gonja's loaders.Loader.
func (l stringLoader) Read(path string) (io.Reader, error) {
	if path != l.name {
		return nil, fmt.Errorf("template %q: includes are not supported", path)
	}
	return strings.NewReader(l.src), nil
}
func (l stringLoader) Resolve(path string) (string, error)         { return path, nil }
func (l stringLoader) Inherit(from string) (loaders.Loader, error) { return l, nil }

func (e *Engine) parse(s string) (*parsed, error) {
	if p, ok := e.tmpls.Load(s); ok {
		return p.(*parsed), nil
	}
	p, err := e.split(s)
	if err != nil {
		return nil, err
	}
	e.tmpls.Store(s, p)
	return p, nil
}

func (e *Engine) split(s string) (p *parsed, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: %q: %v", ErrSyntax, s, r)
		}
	}()
	if strings.Contains(s, "{%") {
		t, err := exec.NewTemplate("template", e.cfg, stringLoader{"template", e.rewriteSource(s)}, e.env)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %s", ErrSyntax, s, rootMessage(err))
		}
		if err := e.prepare(t.Root(), s); err != nil {
			return nil, err
		}
		return &parsed{full: t}, nil
	}
	root, err := e.parseNodes(s)
	if err != nil {
		return nil, err
	}
	p = &parsed{}
	for _, n := range root.Nodes {
		switch x := n.(type) {
		case *nodes.Data:
			p.parts = append(p.parts, part{text: dataText(x)})
		case *nodes.Output:
			p.parts = append(p.parts, part{expr: &expression{src: strings.TrimSpace(s), output: x}})
		case *nodes.Comment:
		default:
			return nil, fmt.Errorf("%w: %q: unexpected %s", ErrSyntax, s, n)
		}
	}
	for i := range p.parts {
		if x := p.parts[i].expr; x != nil {
			x.src = exprSource(x.output, s)
			if err := e.prepare(x.output, x.src); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

// exprSource recovers the source text of one `{{ }}` for messages.
func exprSource(o *nodes.Output, s string) string {
	if o.Start != nil && o.End != nil && o.Start.Pos >= 0 && o.End.Pos+len(o.End.Val) <= len(s) && o.Start.Pos < o.End.Pos {
		return strings.TrimSpace(s[o.Start.Pos+len(o.Start.Val) : o.End.Pos])
	}
	return o.String()
}

// parseNodes parses s and checks and rewrites its nodes.
func (e *Engine) parseNodes(s string) (*nodes.Template, error) {
	stream := e.lex(s)
	root, err := parser.NewParser("template", stream, e.cfg, stringLoader{"template", s}, e.env.ControlStructures).Parse()
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %s", ErrSyntax, s, rootMessage(err))
	}
	return root, nil
}

// expression parses a bare expression (`when:`), once.
func (e *Engine) expression(src string) (*expression, error) {
	if x, ok := e.exprs.Load(src); ok {
		return x.(*expression), nil
	}
	x, err := e.parseExpression(src)
	if err != nil {
		return nil, err
	}
	e.exprs.Store(src, x)
	return x, nil
}

func (e *Engine) parseExpression(src string) (x *expression, err error) {
	defer func() {
		if r := recover(); r != nil {
			x, err = nil, fmt.Errorf("%w: %q: %v", ErrSyntax, src, r)
		}
	}()
	if strings.Contains(src, "}}") || strings.Contains(src, "{%") || strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("%w: %q is not an expression", ErrSyntax, src)
	}
	stream := e.lex("{{ " + src + " }}")
	root, err := parser.NewParser("expression", stream, e.cfg, stringLoader{}, e.env.ControlStructures).Parse()
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %s", ErrSyntax, src, rootMessage(err))
	}
	if len(root.Nodes) != 1 {
		return nil, fmt.Errorf("%w: %q is not one expression", ErrSyntax, src)
	}
	o, ok := root.Nodes[0].(*nodes.Output)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not an expression", ErrSyntax, src)
	}
	if err := e.prepare(o, src); err != nil {
		return nil, err
	}
	return &expression{src: src, output: o}, nil
}

// evaluator returns a gonja evaluator over vars (globals shadowing them).
func (e *Engine) evaluator(vars map[string]any) *exec.Evaluator {
	return &exec.Evaluator{Config: e.cfg, Environment: e.runEnv(vars), Loader: stringLoader{}}
}

// context builds the variables' context: Undefined entries are left out and
// their reasons kept for messages.
func (e *Engine) context(vars map[string]any) *exec.Context {
	var undef map[string]string
	for k, v := range vars {
		if u, ok := v.(Undefined); ok {
			if undef == nil {
				undef = map[string]string{}
			}
			undef[k] = u.Name
		}
	}
	data := vars
	if undef != nil {
		data = make(map[string]any, len(vars))
		for k, v := range vars {
			if _, ok := undef[k]; !ok {
				data[k] = v
			}
		}
	}
	own := map[string]any{ownVarsKey: vars}
	if undef != nil {
		own[undefKey] = undef
	}
	// vars over globals, as Jinja's context over its globals; without copying vars.
	varsCtx := exec.NewContext(data)
	ctx := exec.NewContext(own)
	if setParent(varsCtx, e.globals) && setParent(ctx, varsCtx) {
		return ctx
	}
	ctx = exec.NewContext(data).Inherit().Update(e.globals)
	ctx.Update(exec.NewContext(own))
	return ctx
}

// contextParent is exec.Context's unexported parent field, if it still has
// that name and type (checked once; otherwise context copies the globals).
var contextParent, hasContextParent = func() (uintptr, bool) {
	f, ok := reflect.TypeFor[exec.Context]().FieldByName("parent")
	return f.Offset, ok && f.Type == reflect.TypeFor[*exec.Context]()
}()

// setParent chains child to parent, which gonja's API only does by copying
// (Inherit + Update); child must be new and unshared.
func setParent(child, parent *exec.Context) bool {
	if !hasContextParent {
		return false
	}
	*(**exec.Context)(unsafe.Add(unsafe.Pointer(child), contextParent)) = parent
	return true
}

// flatContext is context's data in one map, for gonja's Template.Execute
// (which copies only the context's own entries).
func (e *Engine) flatContext(vars map[string]any) *exec.Context {
	data := make(map[string]any, len(vars)+2)
	var undef map[string]string
	for k, v := range vars {
		if u, ok := v.(Undefined); ok {
			if undef == nil {
				undef = map[string]string{}
			}
			undef[k] = u.Name
			continue
		}
		data[k] = v
	}
	if undef != nil {
		data[undefKey] = undef
	}
	data[ownVarsKey] = vars
	return exec.NewContext(data)
}

func (e *Engine) runEnv(vars map[string]any) *exec.Environment {
	return &exec.Environment{
		Context:           e.context(vars),
		Filters:           e.env.Filters,
		Tests:             e.env.Tests,
		ControlStructures: e.env.ControlStructures,
		Methods:           e.env.Methods,
	}
}

func (e *Engine) evalExpr(x *expression, vars map[string]any) (any, error) {
	ev := e.evaluator(vars)
	o := x.output
	var v *exec.Value
	if o.Condition != nil {
		c := ev.Eval(o.Condition)
		switch {
		case c.IsError():
			v = c
		case c.IsTrue():
			v = ev.Eval(o.Expression)
		case o.Alternative != nil:
			v = ev.Eval(o.Alternative)
		default:
			v = exec.AsValue(nil)
		}
	} else {
		v = ev.Eval(o.Expression)
	}
	if v.IsError() {
		return nil, e.evalError(x.src, v, ev)
	}
	out := goValue(v)
	if u, ok := hasUndefined(out); ok {
		return nil, fmt.Errorf("%w %q in %q", ErrUndefined, u.Name, x.src)
	}
	return out, nil
}

func (e *Engine) execute(src string, t *exec.Template, vars map[string]any) (string, error) {
	ctx := e.flatContext(vars)
	var b strings.Builder
	if err := t.Execute(&b, ctx); err != nil {
		return "", e.mapError(src, err, ctx)
	}
	return b.String(), nil
}

func (e *Engine) evalError(src string, v *exec.Value, ev *exec.Evaluator) error {
	err, _ := v.Interface().(error)
	if err == nil {
		return fmt.Errorf("%w: %q: %s", ErrEval, src, v.String())
	}
	return e.mapError(src, err, ev.Environment.Context)
}

// mapError turns a gonja error into ErrUndefined (naming the variable and,
// for a variable that could not be resolved, why) or ErrEval.
func (e *Engine) mapError(src string, err error, ctx *exec.Context) error {
	if name, ok := undefinedName(err); ok {
		if reasons, found := ctx.Get(undefKey); found {
			if r, ok := reasons.(map[string]string)[name]; ok {
				name = r
			}
		}
		if m := callItem.FindStringSubmatch(name); m != nil {
			// gonja names a subscript of a call's result by the call's Go form
			return fmt.Errorf("%w: no element %s in the result of a call (index out of range or missing key) in %q", ErrUndefined, m[1], src)
		}
		return fmt.Errorf("%w %q in %q", ErrUndefined, name, src)
	}
	return fmt.Errorf("%w: %q: %s", ErrEval, src, rootMessage(err))
}

// callItem matches gonja's name for a missing item of a call's result: `call([], map[])[2]`.
var callItem = regexp.MustCompile(`^call\(.*\)\[(.+)\]$`)

var undefinedPatterns = []*regexp.Regexp{
	regexp.MustCompile(`Unable to evaluate name "([^"]*)"`),
	regexp.MustCompile(`(?i:unable to evaluate) ([^:]*): (?:attribute|item) '?([^']*?)'? not found`),
	regexp.MustCompile(`undefined variable ("(?:[^"\\]|\\.)*")`), // undefinedError, flattened by gonja
}

// undefinedName reports whether err (at its root) is a missing variable or
// attribute, and which (the innermost one named in the message).
func undefinedName(err error) (string, bool) {
	for cur := err; cur != nil; cur = unwrap(cur) {
		if ue, ok := cur.(*undefinedError); ok {
			return ue.name, true
		}
	}
	msg := rootMessage(err)
	best, at := "", -1
	for _, re := range undefinedPatterns {
		for _, m := range re.FindAllStringSubmatchIndex(msg, -1) {
			if m[0] > at {
				best, at = msg[m[2]:m[3]], m[0]
				if u, err := strconv.Unquote(best); err == nil && strings.HasPrefix(best, `"`) {
					best = u
				}
			}
		}
	}
	return best, at >= 0
}

// unwrap descends one level: pkg/errors causes, Go wrapping, and the error
// held by a gonja value.
func unwrap(err error) error {
	if v, ok := err.(*exec.Value); ok {
		if inner, ok := v.Interface().(error); ok && inner != err {
			return inner
		}
		return nil
	}
	if next := pkgerrors.Unwrap(err); next != nil {
		return next
	}
	if c, ok := err.(interface{ Cause() error }); ok && c.Cause() != err {
		return c.Cause()
	}
	return nil
}

// rootMessage is the message of the innermost error, first line only.
func rootMessage(err error) string {
	cur := err
	for next := unwrap(cur); next != nil; next = unwrap(cur) {
		cur = next
	}
	msg := cur.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// environment builds gonja's environment with Ansible's filters and tests
// over Jinja's built-in ones.
func environment(e *Engine) *exec.Environment {
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(builtins.Filters)
	for name, f := range filterTable {
		setFilter(filters, name, adaptFilter(name, f))
	}
	setFilter(filters, "map", adaptFilter("map", fMap))
	for name, f := range testFilters(testTable) {
		setFilter(filters, name, f)
	}
	tests := exec.NewTestSet(map[string]exec.TestFunction{}).Update(builtins.Tests)
	for name, f := range testTable {
		setTest(tests, name, adaptTest(name, f))
	}
	globals := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	for name, f := range globalFunctions(e) {
		globals.Set(name, f)
	}
	return &exec.Environment{
		Context:           globals,
		Filters:           filters,
		Tests:             tests,
		ControlStructures: exec.NewControlStructureSet(map[string]parser.ControlStructureParser{}).Update(builtins.ControlStructures),
		Methods:           methods(),
	}
}

func setFilter(s *exec.FilterSet, name string, f exec.FilterFunction) {
	if s.Exists(name) {
		_ = s.Replace(name, f)
		return
	}
	_ = s.Register(name, f)
}

func setTest(s *exec.TestSet, name string, f exec.TestFunction) {
	if s.Exists(name) {
		_ = s.Replace(name, f)
		return
	}
	_ = s.Register(name, f)
}

// dataText is literal text with Jinja's whitespace control applied.
func dataText(d *nodes.Data) string {
	out := d.Data.Val
	if d.RemoveFirstLineReturn {
		out = strings.TrimPrefix(strings.TrimPrefix(out, "\r\n"), "\n")
	}
	if d.Trim.Left {
		out = strings.TrimLeft(out, " \r\n\t")
	}
	if d.Trim.Right {
		out = strings.TrimRight(out, " \r\n\t")
	}
	return out
}

// hasUndefined finds an Undefined result or list element (map(attribute=)
// of a missing attribute yields them, for select('defined') to drop).
func hasUndefined(v any) (Undefined, bool) {
	switch x := v.(type) {
	case Undefined:
		return x, true
	case []any:
		for _, e := range x {
			if u, ok := e.(Undefined); ok {
				return u, true
			}
		}
	}
	return Undefined{}, false
}

// fileLoader serves a template file's text and reads the files it includes
// or imports relative to its directory.
type fileLoader struct{ name, src, dir string }

// Read, Resolve and Inherit implement gonja's loaders.Loader.
func (l fileLoader) Read(path string) (io.Reader, error) {
	if path == l.name {
		return strings.NewReader(l.src), nil
	}
	p := path
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.dir, p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return strings.NewReader(string(data)), nil
}
func (l fileLoader) Resolve(path string) (string, error)         { return path, nil }
func (l fileLoader) Inherit(from string) (loaders.Loader, error) { return l, nil }

// RenderFile renders a template file's text (the template module) like
// RenderText; `{% include %}`, `{% import %}` and `{% extends %}` read other
// files relative to the file's directory.
func (e *Engine) RenderFile(path, text string, vars map[string]any) (out string, err error) {
	if !strings.Contains(text, "{%") {
		return e.RenderText(path, text, vars)
	}
	key := "file\x00" + path + "\x00" + text
	var t *exec.Template
	if c, ok := e.tmpls.Load(key); ok {
		t = c.(*parsed).full
	} else {
		name := filepath.Base(path)
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%w: %v", ErrSyntax, r)
				}
			}()
			t, err = exec.NewTemplate(name, e.cfg, fileLoader{name: name, src: e.rewriteSource(text), dir: filepath.Dir(path)}, e.env)
		}()
		if err != nil {
			return "", fmt.Errorf("%s: %w: %s", path, ErrSyntax, rootMessage(err))
		}
		if err := e.prepare(t.Root(), path); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		e.tmpls.Store(key, &parsed{full: t})
	}
	defer guard(path, &err)
	v, err := e.execute(path, t, vars)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
