package template

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// lenientFilters and lenientTests accept an undefined subject (as Undefined).
var (
	lenientFilters = map[string]bool{"default": true, "d": true, "mandatory": true}
	lenientTests   = map[string]bool{"defined": true, "undefined": true, "none": true}
)

// subject converts a filter's or test's left operand; an undefined one is
// an error unless lenient.
func subject(in *exec.Value, lenient bool, ctx *exec.Context) (any, error) {
	if in == nil {
		return nil, nil
	}
	if in.IsError() {
		err, _ := in.Interface().(error)
		if err == nil {
			err = fmt.Errorf("%s", in.Error())
		}
		if name, ok := undefinedName(err); ok && lenient {
			if reasons, found := ctx.Get(undefKey); found {
				if r, ok := reasons.(map[string]string)[name]; ok {
					name = r
				}
			}
			return Undefined{Name: name}, nil
		}
		return nil, err
	}
	return goValue(in), nil
}

// args converts a call's arguments: positional first, then keywords.
func args(first any, params *exec.VarArgs) ([]any, error) {
	out := make([]any, 0, 1+len(params.Args)+len(params.KwArgs))
	out = append(out, first)
	for _, a := range params.Args {
		if a.IsError() {
			return nil, a.Interface().(error)
		}
		out = append(out, goValue(a))
	}
	for k, v := range params.KwArgs {
		if v.IsError() {
			return nil, v.Interface().(error)
		}
		out = append(out, kwarg{name: k, value: goValue(v)})
	}
	return out, nil
}

func adaptFilter(name string, f fn) exec.FilterFunction {
	lenient := lenientFilters[name]
	return func(ev *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		first, err := subject(in, lenient, ev.Environment.Context)
		if err != nil {
			return exec.AsValue(err)
		}
		p, err := args(first, params)
		if err != nil {
			return exec.AsValue(err)
		}
		out, err := safeCall(name, f, p)
		if err != nil {
			return exec.AsValue(err)
		}
		return exec.AsValue(out)
	}
}

func adaptTest(name string, f fn) exec.TestFunction {
	lenient := lenientTests[name]
	return func(ev *exec.Evaluator, in *exec.Value, params *exec.VarArgs) (bool, error) {
		first, err := subject(in, lenient, ev.Environment.Context)
		if err != nil {
			return false, err
		}
		p, err := args(first, params)
		if err != nil {
			return false, err
		}
		out, err := safeCall(name, f, p)
		if err != nil {
			return false, err
		}
		return Truthy(out), nil
	}
}

// safeCall runs a filter or test, turning a panic into an error.
func safeCall(name string, f fn, p []any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%s: %v", name, r)
		}
	}()
	return f(p...)
}

// goValue converts a gonja value to plain Go: nil, bool, int, float64,
// string, []any, map[string]any (or the caller's own types, untouched).
func goValue(v *exec.Value) any {
	if v == nil || v.IsNil() {
		return nil
	}
	if !v.Val.IsValid() || !v.Val.CanInterface() {
		return nil
	}
	return plain(v.Val.Interface())
}

func plain(x any) any {
	switch t := x.(type) {
	case nil, string, bool, int, float64, map[string]any, Undefined:
		return t
	case []any:
		for i, v := range t {
			if _, ok := v.(*exec.Value); ok {
				out := make([]any, len(t))
				copy(out, t[:i])
				for j := i; j < len(t); j++ {
					out[j] = plain(t[j])
				}
				return out
			}
		}
		return t
	case *exec.Value:
		return goValue(t)
	case exec.ValuesList:
		out := make([]any, len(t))
		for i, v := range t {
			out[i] = goValue(v)
		}
		return out
	case []*exec.Value:
		out := make([]any, len(t))
		for i, v := range t {
			out[i] = goValue(v)
		}
		return out
	case *exec.Dict:
		out := make(map[string]any, len(t.Pairs))
		for _, p := range t.Pairs {
			out[String(goValue(p.Key))] = goValue(p.Value)
		}
		return out
	case map[string]*exec.Value:
		out := make(map[string]any, len(t))
		for k, v := range t {
			out[k] = goValue(v)
		}
		return out
	case *exec.Pair:
		return []any{goValue(t.Key), goValue(t.Value)}
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return x
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = plain(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return x
		}
		out := make(map[string]any, rv.Len())
		iter := rv.MapRange()
		for iter.Next() {
			out[iter.Key().String()] = plain(iter.Value().Interface())
		}
		return out
	}
	return x
}

// prepare checks and rewrites a parsed tree once: unknown filters and tests
// are syntax errors (as Jinja's compiler says), and `a % b` becomes
// __mod(a, b) (Python's formatting for strings; gonja would panic on a
// zero divisor).
func (e *Engine) prepare(root nodes.Node, src string) error {
	w := &walker{e: e, seen: map[uintptr]bool{}}
	w.walk(reflect.ValueOf(root))
	if w.err != "" {
		return fmt.Errorf("%w: %q: %s", ErrSyntax, src, w.err)
	}
	return nil
}

type walker struct {
	e    *Engine
	seen map[uintptr]bool
	err  string
}

var (
	nodeType = reflect.TypeFor[nodes.Node]()
	exprType = reflect.TypeFor[nodes.Expression]()
)

func (w *walker) walk(v reflect.Value) {
	if w.err != "" || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.CanSet() && (v.Type() == exprType || v.Type() == nodeType) {
			if r := w.rewrite(v.Elem().Interface()); r != nil {
				v.Set(reflect.ValueOf(r))
			}
		}
		w.walk(v.Elem())
	case reflect.Pointer:
		if v.IsNil() || w.seen[v.Pointer()] {
			return
		}
		w.seen[v.Pointer()] = true
		switch n := v.Interface().(type) {
		case *nodes.FilterCall:
			if !w.e.env.Filters.Exists(n.Name) {
				w.err = fmt.Sprintf("unknown filter %q", n.Name)
				return
			}
		case *nodes.Call:
			// gonja sets the receiver of a method call only after a name
			// (`x.upper()`), not after parentheses (`(a ~ b).upper()`).
			if g, ok := n.Func.(*nodes.GetAttribute); ok && n.Parent == nil && g.Attribute != "" {
				n.Parent = g.Node
			}
		case *nodes.TestCall:
			if !w.e.env.Tests.Exists(n.Name) {
				w.err = fmt.Sprintf("unknown test %q", n.Name)
				return
			}
			// gonja parses `is t(a, b)` as one tuple argument; Jinja passes two.
			if len(n.Args) == 1 && n.Name != "in" {
				if tup, ok := n.Args[0].(*nodes.Tuple); ok {
					n.Args = tup.Val
				}
			}
		case *tokens.Token, *nodes.Template:
			if t, ok := n.(*nodes.Template); ok {
				for i := range t.Nodes {
					w.walk(reflect.ValueOf(&t.Nodes[i]).Elem())
				}
				for _, m := range t.Macros {
					w.walk(reflect.ValueOf(m))
				}
			}
			return
		}
		w.walk(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !v.Type().Field(i).IsExported() {
				continue
			}
			w.walk(f)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			w.walk(v.Index(i))
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			val := iter.Value()
			if val.Kind() == reflect.Interface && (val.Type() == exprType || val.Type() == nodeType) && !val.IsNil() {
				if r := w.rewrite(val.Elem().Interface()); r != nil {
					v.SetMapIndex(iter.Key(), reflect.ValueOf(r))
					val = reflect.ValueOf(r)
				}
			}
			w.walk(val)
		}
	}
}

// arithmetic maps the operators gonja gets wrong (or panics on) to the
// global functions computing them with Python's rules.
var arithmetic = map[tokens.Type]string{tokens.Modulo: "__mod", tokens.Multiply: "__mul", tokens.Division: "__div", tokens.FloorDivision: "__floordiv"}

// rewrite returns the replacement of a node, or nil.
func (w *walker) rewrite(n any) nodes.Expression {
	if neg, ok := n.(*nodes.Negation); ok && neg.Operator != nil {
		// gonja's `not 0` is the int 1; Python's is True.
		tok := &tokens.Token{Type: tokens.Name, Val: "__not", Pos: neg.Operator.Pos, Line: neg.Operator.Line, Col: neg.Operator.Col}
		return &nodes.Call{Location: tok, Func: &nodes.Name{Name: tok}, Args: []nodes.Expression{neg.Term}, Kwargs: map[string]nodes.Expression{}}
	}
	b, ok := n.(*nodes.BinaryExpression)
	if !ok || b.Operator == nil || b.Operator.Token == nil {
		return nil
	}
	fn, ok := arithmetic[b.Operator.Token.Type]
	if !ok {
		return nil
	}
	tok := &tokens.Token{Type: tokens.Name, Val: fn, Pos: b.Operator.Token.Pos, Line: b.Operator.Token.Line, Col: b.Operator.Token.Col}
	return &nodes.Call{Location: tok, Func: &nodes.Name{Name: tok}, Args: []nodes.Expression{b.Left, b.Right}, Kwargs: map[string]nodes.Expression{}}
}

// lex tokenizes s, turning a test called with keyword arguments
// (`v is version('1', '>=', strict=true)`, which gonja's parser does not
// accept) into the equivalent filter call `v | __is_version(...)`.
func (e *Engine) lex(s string) *tokens.Stream {
	st := tokens.LexAll(e.fixSource(s), e.cfg)
	var toks []*tokens.Token
	for !st.End() {
		toks = append(toks, st.Next())
	}
	toks = append(toks, st.Current())
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].Type != tokens.Is {
			continue
		}
		j, negate := i+1, false
		if toks[j].Type == tokens.Not {
			j, negate = j+1, true
		}
		if j+1 >= len(toks) || toks[j].Type != tokens.Name || toks[j+1].Type != tokens.LeftParenthesis || !hasKeyword(toks[j+1:]) {
			continue
		}
		name := "__is_" + toks[j].Val
		if negate {
			name = "__isnot_" + toks[j].Val
		}
		pipe := *toks[i]
		pipe.Type, pipe.Val = tokens.Pipe, "|"
		fn := *toks[j]
		fn.Val = name
		rest := append([]*tokens.Token{&pipe, &fn}, toks[j+1:]...)
		toks = append(toks[:i], rest...)
	}
	return tokens.NewStream(toks)
}

// hasKeyword reports whether the parenthesised arguments starting at
// toks[0] contain a keyword argument (name=value) at their own level.
func hasKeyword(toks []*tokens.Token) bool {
	depth := 0
	for _, t := range toks {
		switch t.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			depth++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			depth--
			if depth == 0 {
				return false
			}
		case tokens.Assign:
			if depth == 1 {
				return true
			}
		case tokens.EOF:
			return false
		}
	}
	return false
}

// testFilters exposes every test as __is_<name> and __isnot_<name> filters
// (see lex).
func testFilters(tests map[string]fn) map[string]exec.FilterFunction {
	out := map[string]exec.FilterFunction{}
	for name, f := range tests {
		t := adaptTest(name, f).(func(*exec.Evaluator, *exec.Value, *exec.VarArgs) (bool, error))
		for _, negate := range []bool{false, true} {
			prefix := "__is_"
			if negate {
				prefix = "__isnot_"
			}
			out[prefix+name] = func(ev *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
				ok, err := t(ev, in, params)
				if err != nil {
					return exec.AsValue(err)
				}
				return exec.AsValue(ok != negate)
			}
		}
	}
	return out
}

// rewriteSource applies lex's rewrite of tests with keyword arguments to the
// text of a whole template (gonja lexes those itself), by token positions;
// the text is left as it is where positions do not match it.
func (e *Engine) rewriteSource(s string) string {
	if !strings.Contains(s, "\r") {
		s = e.fixSource(s)
	}
	if !strings.Contains(s, "=") || strings.Contains(s, "\r") {
		return s
	}
	st := tokens.LexAll(s, e.cfg)
	var toks []*tokens.Token
	for !st.End() {
		toks = append(toks, st.Next())
	}
	type edit struct {
		from, to int
		text     string
	}
	var edits []edit
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].Type != tokens.Is {
			continue
		}
		j, prefix := i+1, "__is_"
		if toks[j].Type == tokens.Not {
			j, prefix = j+1, "__isnot_"
		}
		if j+1 >= len(toks) || toks[j].Type != tokens.Name || toks[j+1].Type != tokens.LeftParenthesis || !hasKeyword(append(toks[j+1:], &tokens.Token{Type: tokens.EOF})) {
			continue
		}
		from, to := toks[i].Pos, toks[j].Pos+len(toks[j].Val)
		if from < 0 || to > len(s) || !strings.HasPrefix(s[from:], toks[i].Val) || !strings.HasPrefix(s[toks[j].Pos:], toks[j].Val) {
			continue
		}
		edits = append(edits, edit{from, to, "| " + prefix + toks[j].Val})
	}
	for k := len(edits) - 1; k >= 0; k-- {
		s = s[:edits[k].from] + edits[k].text + s[edits[k].to:]
	}
	return s
}
