package template

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Variable resolution is strict, as Ansible's: every identifier becomes
// __var($env, "name"), which fails naming the variable when it is missing,
// and every member access becomes __get(obj, key, "path"), which fails naming
// the missing attribute. Inside the first argument of default() and of the
// defined/undefined tests they become __soft/__softget, which yield Undefined
// instead so that the filter or test can decide.

// lenient names the functions whose first argument may be undefined.
var lenient = map[string]bool{
	"f_default": true, "f_d": true, "is_defined": true, "is_undefined": true,
	"f_mandatory": true, "is_none": true,
}

// scan is the first pass: it records callee identifiers and let-bound names,
// which must stay as they are, and the nodes under a lenient argument.
type scan struct {
	callees map[ast.Node]bool
	lets    map[string]bool
	soft    map[ast.Node]bool
}

func (s *scan) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		s.callees[n.Callee] = true
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && lenient[id.Value] && len(n.Arguments) > 0 {
			ast.Walk(&n.Arguments[0], markAll(s.soft))
		}
	case *ast.MemberNode:
		if n.Method {
			s.callees[n] = true
		}
	case *ast.VariableDeclaratorNode:
		s.lets[n.Name] = true
	}
}

type markAll map[ast.Node]bool

func (m markAll) Visit(node *ast.Node) { m[*node] = true }

// strict is the second pass: it rewrites identifiers, member accesses and
// the `..` operator (Jinja's `~`).
type strict struct{ s *scan }

func (p strict) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if p.s.callees[n] || p.s.lets[n.Value] || n.Value == "$env" || strings.HasPrefix(n.Value, "#") {
			return
		}
		fn := "__var"
		if p.s.soft[n] {
			fn = "__soft"
		}
		ast.Patch(node, call(fn, &ast.IdentifierNode{Value: "$env"}, &ast.StringNode{Value: n.Value}))
	case *ast.MemberNode:
		if p.s.callees[n] || n.Optional {
			return
		}
		if p.s.soft[n] {
			ast.Patch(node, call("__softget", n.Node, n.Property))
			return
		}
		ast.Patch(node, call("__get", n.Node, n.Property, &ast.StringNode{Value: describe(n.Node)}))
	case *ast.BinaryNode:
		switch n.Operator {
		case "..":
			ast.Patch(node, call("__concat", n.Left, n.Right))
		case "+":
			ast.Patch(node, call("__add", n.Left, n.Right))
		}
	}
}

func call(name string, args ...ast.Node) *ast.CallNode {
	return &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: args}
}

// describe renders the source of an already patched node for messages.
func describe(n ast.Node) string {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return n.String()
	}
	id, _ := c.Callee.(*ast.IdentifierNode)
	switch {
	case id != nil && (id.Value == "__var" || id.Value == "__soft"):
		if s, ok := c.Arguments[1].(*ast.StringNode); ok {
			return s.Value
		}
	case id != nil && (id.Value == "__get" || id.Value == "__softget"):
		if s, ok := c.Arguments[1].(*ast.StringNode); ok {
			return describe(c.Arguments[0]) + "." + s.Value
		}
		return describe(c.Arguments[0]) + "[" + c.Arguments[1].String() + "]"
	}
	return n.String()
}

// compileExpr translates and compiles one bare Jinja expression.
func (e *Engine) compileExpr(src string) (*vm.Program, error) {
	code, err := translate(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrSyntax, src, err)
	}
	s := &scan{callees: map[ast.Node]bool{}, lets: map[string]bool{}, soft: map[ast.Node]bool{}}
	opts := append([]expr.Option{expr.Patch(s), expr.Patch(strict{s})}, e.options...)
	prog, err := expr.Compile(code, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %s", ErrSyntax, src, firstLine(err))
	}
	return prog, nil
}

func firstLine(err error) string {
	msg := err.Error()
	var fe interface{ Unwrap() error }
	if errors.As(err, &fe) && fe.Unwrap() != nil {
		msg = fe.Unwrap().Error()
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		return msg[:i]
	}
	return msg
}
