package template

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/tokens"
)

// fixSource rewrites template text where gonja's grammar differs from
// Jinja2's, by token positions (an edit whose position does not match the
// text is skipped, leaving gonja's own error):
//   - string literals with backslashes get Python's escapes (`'\d+'` keeps
//     its backslash; gonja unquotes them as Go strings and refuses `\d`);
//   - collection names of filters and tests are dropped
//     (`| ansible.builtin.to_json`, `is ansible.builtin.version`);
//   - a conditional expression in another's else branch is parenthesised
//     (`a if x else b if y else c`, which gonja's parser refuses).
func (e *Engine) fixSource(s string) string {
	s = joinTagLines(s)
	if !strings.Contains(s, `\`) && !strings.Contains(s, " if ") && !strings.Contains(s, ".") && !strings.Contains(s, " in ") && !strings.Contains(s, "not ") {
		return s
	}
	st := tokens.LexAll(s, e.cfg)
	var toks []*tokens.Token
	for !st.End() {
		toks = append(toks, st.Next())
	}
	var edits []edit
	edits = append(edits, stringEdits(s, toks)...)
	edits = append(edits, fqcnEdits(s, toks)...)
	edits = append(edits, inEdits(s, toks)...)
	s = applyEdits(s, edits)
	if strings.Contains(s, "else") {
		s = e.rewriteConditionals(s)
	}
	return s
}

// joinTagLines turns newlines inside `{% %}` and `{{ }}` tags (outside
// string literals) into spaces: gonja refuses `{% if a or\n b %}`, which
// Jinja2 reads as one line. Byte positions do not move.
func joinTagLines(s string) string {
	if !strings.Contains(s, "\n") || !strings.Contains(s, "{") {
		return s
	}
	b := []byte(s)
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '{' || b[i+1] != '%' && b[i+1] != '{' {
			continue
		}
		end := "%}"
		if b[i+1] == '{' {
			end = "}}"
		}
		var quote byte
		for j := i + 2; j+1 < len(b); j++ {
			c := b[j]
			switch {
			case quote != 0:
				if c == quote && b[j-1] != '\\' {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '\n':
				b[j] = ' '
			case c == end[0] && b[j+1] == end[1]:
				i = j + 1
				j = len(b)
			}
		}
	}
	return string(b)
}

type edit struct {
	from, to int
	text     string
}

// applyEdits applies non-overlapping edits (overlapping ones are dropped).
func applyEdits(s string, edits []edit) string {
	if len(edits) == 0 {
		return s
	}
	sorted := make([]edit, 0, len(edits))
	for _, e := range edits {
		i := len(sorted)
		for i > 0 && (sorted[i-1].from > e.from || sorted[i-1].from == e.from && sorted[i-1].to > e.to) {
			i--
		}
		sorted = append(sorted[:i], append([]edit{e}, sorted[i:]...)...)
	}
	var b strings.Builder
	pos := 0
	for _, e := range sorted {
		if e.from < pos || e.to > len(s) || e.from > e.to {
			continue
		}
		b.WriteString(s[pos:e.from])
		b.WriteString(e.text)
		pos = e.to
	}
	b.WriteString(s[pos:])
	return b.String()
}

// stringEdits re-encodes string literals that contain a backslash.
func stringEdits(s string, toks []*tokens.Token) []edit {
	var out []edit
	for _, t := range toks {
		if t.Type != tokens.String || t.Pos < 0 || t.Pos >= len(s) || (s[t.Pos] != '\'' && s[t.Pos] != '"') {
			continue
		}
		end := literalEnd(s, t.Pos)
		if end < 0 || !strings.Contains(s[t.Pos:end], `\`) {
			continue
		}
		out = append(out, edit{t.Pos, end, encodeLiteral(pyUnescape(s[t.Pos+1 : end-1]))})
	}
	return out
}

// literalEnd finds the end (after the closing quote) of the literal at pos,
// by gonja's rule: a quote preceded by a backslash does not close it.
func literalEnd(s string, pos int) int {
	q := s[pos]
	for i := pos + 1; i < len(s); i++ {
		if s[i] == q && s[i-1] != '\\' {
			return i + 1
		}
	}
	return -1
}

// pyUnescape decodes a Python string literal's escapes; unknown ones keep
// their backslash, as Python does.
func pyUnescape(raw string) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 == len(raw) {
			b.WriteByte(c)
			continue
		}
		i++
		switch n := raw[i]; n {
		case '\\', '\'', '"':
			b.WriteByte(n)
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case '\n':
		case 'x', 'u', 'U':
			width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[n]
			if v, err := strconv.ParseUint(raw[i+1:min(len(raw), i+1+width)], 16, 32); err == nil && i+width < len(raw) {
				b.WriteRune(rune(v))
				i += width
			} else {
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		default:
			if n >= '0' && n <= '7' {
				j := i
				for j < len(raw) && j < i+3 && raw[j] >= '0' && raw[j] <= '7' {
					j++
				}
				v, _ := strconv.ParseUint(raw[i:j], 8, 32)
				b.WriteRune(rune(v))
				i = j - 1
				continue
			}
			b.WriteByte('\\')
			b.WriteByte(n)
		}
	}
	return b.String()
}

// encodeLiteral writes v as a literal that gonja reads back as v: no
// backslash ever precedes a quote but in `\"` (a backslash is `\x5c`).
func encodeLiteral(v string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range v {
		switch {
		case r == '\\':
			b.WriteString(`\x5c`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// inEdits parenthesises a filtered right operand of `in`
// (`'x' in out | default(”) or y`, which gonja's parser refuses), and the
// operand of `not` when it has attributes, subscripts or filters (gonja
// reads `not r.stat.exists` as `(not r.stat).exists`).
func inEdits(s string, toks []*tokens.Token) []edit {
	var out []edit
	for i, t := range toks {
		if i+1 >= len(toks) {
			continue
		}
		isIn := t.Type == tokens.In || t.Type == tokens.Name && t.Val == "in"
		isNot := t.Type == tokens.Not && (i == 0 || toks[i-1].Type != tokens.Is) && toks[i+1].Type != tokens.In
		if !isIn && !isNot {
			continue
		}
		end := operandEnd(toks, i+1)
		if end < 0 || end >= len(toks) || end == i+2 || isIn && toks[skipPrimary(toks, i+1)].Type != tokens.Pipe {
			continue // a lone name or literal; or `in x` without filters
		}
		from, to := toks[i+1].Pos, toks[end].Pos
		if from < 0 || to > len(s) || from >= to || toks[i+1].Type == tokens.LeftParenthesis && end == matching(toks, i+1)+1 {
			continue
		}
		out = append(out, edit{from, from, "("}, edit{to, to, ")"})
	}
	return out
}

// operandEnd returns the index after a primary expression and the filters
// applied to it (`a.b[0] | f(x) | g`), or -1.
func operandEnd(toks []*tokens.Token, i int) int {
	j := skipPrimary(toks, i)
	for j >= 0 && j < len(toks) && toks[j].Type == tokens.Pipe {
		j++
		for j+1 < len(toks) && toks[j].Type == tokens.Name && toks[j+1].Type == tokens.Dot {
			j += 2
		}
		if j >= len(toks) || toks[j].Type != tokens.Name {
			return -1
		}
		j++
		if j < len(toks) && toks[j].Type == tokens.LeftParenthesis {
			if j = matching(toks, j); j < 0 {
				return -1
			}
			j++
		}
	}
	return j
}

// skipPrimary returns the index after the primary expression (with its
// attributes, subscripts and calls) starting at toks[i], or -1.
func skipPrimary(toks []*tokens.Token, i int) int {
	switch toks[i].Type {
	case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
		if i = matching(toks, i); i < 0 {
			return -1
		}
		i++
	case tokens.Name, tokens.String, tokens.Integer, tokens.Float:
		i++
	default:
		return -1
	}
	for i < len(toks) {
		switch toks[i].Type {
		case tokens.Dot:
			if i+1 >= len(toks) || toks[i+1].Type != tokens.Name && toks[i+1].Type != tokens.Integer {
				return -1
			}
			i += 2
		case tokens.LeftBracket, tokens.LeftParenthesis:
			if i = matching(toks, i); i < 0 {
				return -1
			}
			i++
		default:
			return i
		}
	}
	return i
}

// matching returns the index of the bracket closing toks[i], or -1.
func matching(toks []*tokens.Token, i int) int {
	depth := 0
	for ; i < len(toks); i++ {
		switch toks[i].Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			depth++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			depth--
			if depth == 0 {
				return i
			}
		case tokens.EOF:
			return -1
		}
	}
	return -1
}

// fqcnEdits drops collection names of filters and tests: `| a.b.name`.
func fqcnEdits(s string, toks []*tokens.Token) []edit {
	var out []edit
	for i := 0; i+5 < len(toks); i++ {
		isTest := toks[i].Type == tokens.Is || toks[i].Type == tokens.Not && i > 0 && toks[i-1].Type == tokens.Is
		if toks[i].Type != tokens.Pipe && !isTest {
			continue
		}
		j := i + 1
		if toks[j].Type != tokens.Name || toks[j+1].Type != tokens.Dot || toks[j+2].Type != tokens.Name ||
			toks[j+3].Type != tokens.Dot || toks[j+4].Type != tokens.Name {
			continue
		}
		from, last := toks[j].Pos, toks[j+4]
		to := last.Pos + len(last.Val)
		if from < 0 || to > len(s) || !strings.HasPrefix(s[from:], toks[j].Val) || !strings.HasPrefix(s[last.Pos:], last.Val) {
			continue
		}
		out = append(out, edit{from, to, last.Val})
	}
	return out
}

// rewriteConditionals turns every conditional expression `A if C else B`
// into `((C) and [A] or [B])[0]`, which evaluates lazily as Python's does:
// gonja parses a conditional only as the whole of a `{{ }}`, not inside
// parentheses, lists, call arguments or another conditional. The rightmost
// is rewritten first, then the text is lexed again (nested ones).
func (e *Engine) rewriteConditionals(s string) string {
	for range 32 {
		st := tokens.LexAll(s, e.cfg)
		var toks []*tokens.Token
		for !st.End() {
			toks = append(toks, st.Next())
		}
		toks = append(toks, st.Current())
		ed, ok := lastConditional(s, toks)
		if !ok {
			return s
		}
		s = ed
	}
	return s
}

// lastConditional rewrites the rightmost conditional expression of s.
func lastConditional(s string, toks []*tokens.Token) (string, bool) {
	for i := len(toks) - 1; i > 0; i-- {
		t := toks[i]
		if t.Type != tokens.Name || t.Val != "if" || !isConditional(toks, i) {
			continue
		}
		els := matchingElse(toks, i)
		if els < 0 {
			continue
		}
		start := exprStart(toks, i)
		end, _ := branchEnd(toks, els+1)
		if start < 0 || end < 0 {
			continue
		}
		from, to := toks[start].Pos, toks[end].Pos
		ifPos, elsePos := t.Pos, toks[els].Pos
		if from < 0 || to > len(s) || !(from <= ifPos && ifPos < elsePos && elsePos < to) ||
			!strings.HasPrefix(s[ifPos:], "if") || !strings.HasPrefix(s[elsePos:], "else") {
			continue
		}
		a, c, b := s[from:ifPos], s[ifPos+2:elsePos], s[elsePos+4:to]
		return s[:from] + "((" + c + ") and [" + a + "] or [" + b + "])[0] " + s[to:], true
	}
	return s, false
}

// isConditional tells an expression's `if` from a statement's (`{% if`,
// `{% elif`) and from a for loop's filter (`{% for x in l if c %}`).
func isConditional(toks []*tokens.Token, i int) bool {
	depth := 0
	for j := i - 1; j >= 0; j-- {
		switch t := toks[j]; t.Type {
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			depth++
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			depth--
		case tokens.VariableBegin:
			return true
		case tokens.BlockBegin:
			if j == i-1 {
				return false // {% if
			}
			kw := toks[j+1]
			return !(kw.Type == tokens.Name && kw.Val == "for" && depth == 0)
		case tokens.Name:
			if j == i-1 && t.Val == "elif" {
				return false
			}
		}
	}
	return true // a bare expression
}

// matchingElse finds the `else` of the conditional whose `if` is toks[i].
func matchingElse(toks []*tokens.Token, i int) int {
	depth, ifs := 0, 0
	for j := i + 1; j < len(toks); j++ {
		switch t := toks[j]; t.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			depth++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			if depth == 0 {
				return -1
			}
			depth--
		case tokens.Comma, tokens.Colon, tokens.VariableEnd, tokens.BlockEnd, tokens.EOF:
			if depth == 0 {
				return -1
			}
		case tokens.Name:
			if depth == 0 && t.Val == "if" {
				ifs++
			}
			if depth == 0 && t.Val == "else" {
				if ifs == 0 {
					return j
				}
				ifs--
			}
		}
	}
	return -1
}

// exprStart finds the first token of the expression that ends with the
// conditional's `if` at toks[i]: after an opening bracket, a comma, a
// colon, `=`, an enclosing `else` or the tag's start.
func exprStart(toks []*tokens.Token, i int) int {
	depth := 0
	for j := i - 1; j >= 0; j-- {
		switch t := toks[j]; t.Type {
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			depth++
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			if depth == 0 {
				return j + 1
			}
			depth--
		case tokens.Comma, tokens.Colon, tokens.Assign, tokens.VariableBegin, tokens.BlockBegin:
			if depth == 0 {
				return j + 1
			}
		case tokens.Name:
			if depth == 0 && (t.Val == "else" || t.Val == "in" || t.Val == "set" || t.Val == "return") {
				return j + 1
			}
		}
	}
	return 0
}

// branchEnd finds the token that ends the expression starting at toks[i]
// (a closing bracket of an outer level, a comma or colon at its level, the
// end of the tag) and whether an `if` occurs at its level before it.
func branchEnd(toks []*tokens.Token, i int) (int, bool) {
	depth, nested := 0, false
	for ; i < len(toks); i++ {
		switch t := toks[i]; t.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			depth++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			if depth == 0 {
				return i, nested
			}
			depth--
		case tokens.Comma, tokens.Colon:
			if depth == 0 {
				return i, nested
			}
		case tokens.VariableEnd, tokens.BlockEnd, tokens.EOF:
			return i, nested
		case tokens.Name:
			if depth == 0 && t.Val == "if" {
				nested = true
			}
		}
	}
	return -1, false
}
