package template

import (
	"fmt"
	"strings"

	"github.com/expr-lang/expr/vm"
)

// parsed is a template split into literal text and compiled expressions.
type parsed struct{ parts []part }

type part struct {
	text string      // literal text (prog == nil)
	src  string      // expression source
	prog *vm.Program // compiled expression
}

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

func (e *Engine) split(s string) (*parsed, error) {
	p := &parsed{}
	var text strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "{{"):
			end, err := exprEnd(s, i+2)
			if err != nil {
				return nil, err
			}
			src := strings.TrimSpace(s[i+2 : end])
			prog, err := e.Program(src)
			if err != nil {
				return nil, err
			}
			if text.Len() > 0 {
				p.parts = append(p.parts, part{text: text.String()})
				text.Reset()
			}
			p.parts = append(p.parts, part{src: src, prog: prog})
			i = end + 2
		case strings.HasPrefix(s[i:], "{#"):
			end := strings.Index(s[i+2:], "#}")
			if end < 0 {
				return nil, fmt.Errorf("%w: unclosed comment '{#' at offset %d", ErrSyntax, i)
			}
			i += end + 4
		case strings.HasPrefix(s[i:], "{%"):
			return nil, fmt.Errorf("%w: statements '{%% %%}' are not supported (offset %d); use loop/when on the task", ErrSyntax, i)
		default:
			text.WriteByte(s[i])
			i++
		}
	}
	if text.Len() > 0 {
		p.parts = append(p.parts, part{text: text.String()})
	}
	return p, nil
}

// exprEnd finds the `}}` closing an expression that starts at from, skipping
// quoted strings and balanced braces of dict literals.
func exprEnd(s string, from int) (int, error) {
	depth := 0
	for i := from; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"':
			j, err := lexString(s, i)
			if err != nil {
				return 0, fmt.Errorf("%w: %w in %q", ErrSyntax, err, s)
			}
			i = j - 1
		case '{':
			depth++
		case '}':
			if depth == 0 && i+1 < len(s) && s[i+1] == '}' {
				return i, nil
			}
			depth--
		}
	}
	return 0, fmt.Errorf("%w: unclosed '{{' at offset %d in %q", ErrSyntax, from-2, s)
}
