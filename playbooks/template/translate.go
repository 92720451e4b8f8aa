package template

import (
	"fmt"
	"strconv"
	"strings"
)

// This file rewrites the Jinja2 expression syntax Ansible users write into
// expr-lang source: filter pipes become calls of f_<name>, `is` tests become
// calls of is_<name>, keyword arguments become __kw(...) values, `~` becomes
// expr's `..` operator (patched into __concat afterwards), Python literals
// become expr literals and a top-level `a if c else b` becomes `c ? a : b`.

type tokKind int

const (
	tIdent tokKind = iota
	tNumber
	tString
	tOp
	tOpen
	tClose
)

type token struct {
	kind tokKind
	text string
	back int // for tClose: distance back to the matching tOpen in the output
}

// keywords are identifiers that never end an operand chain.
var keywords = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "is": true, "if": true,
	"else": true, "matches": true, "contains": true, "startsWith": true,
	"endsWith": true, "let": true,
}

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tIdent, text: src[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := lexNumber(src, i)
			toks = append(toks, token{kind: tNumber, text: src[i:j]})
			i = j
		case c == '\'' || c == '"':
			j, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tString, text: src[i:j]})
			i = j
		case c == '(' || c == '[' || c == '{':
			toks = append(toks, token{kind: tOpen, text: string(c)})
			i++
		case c == ')' || c == ']' || c == '}':
			toks = append(toks, token{kind: tClose, text: string(c)})
			i++
		default:
			op := lexOp(src[i:])
			toks = append(toks, token{kind: tOp, text: op})
			i += len(op)
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || c == '#' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func lexNumber(src string, i int) int {
	j := i
	for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '_') {
		j++
	}
	if j+1 < len(src) && src[j] == '.' && src[j+1] >= '0' && src[j+1] <= '9' {
		j++
		for j < len(src) && src[j] >= '0' && src[j] <= '9' {
			j++
		}
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if k < len(src) && src[k] >= '0' && src[k] <= '9' {
			j = k
			for j < len(src) && src[j] >= '0' && src[j] <= '9' {
				j++
			}
		}
	}
	return j
}

func lexString(src string, i int) (int, error) {
	q := src[i]
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string starting at offset %d", i)
}

var multiOps = []string{"==", "!=", "<=", ">=", "**", "//", "&&", "||", "??", "?.", ".."}

func lexOp(s string) string {
	for _, op := range multiOps {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	return s[:1]
}

// translator holds the state of one rewrite.
type translator struct {
	in     []token
	pos    int
	out    []token
	frames []frame
}

type frame struct {
	open   int  // index of the opening token in out
	isCall bool // a call's argument list: keyword arguments allowed
	kw     bool // a synthetic __kw( frame that closes at the next , or )
}

// translate rewrites one Jinja2 expression into expr-lang source.
func translate(src string) (string, error) {
	toks, err := lex(src)
	if err != nil {
		return "", err
	}
	t := &translator{in: toks}
	if err := t.run(); err != nil {
		return "", err
	}
	out := ternary(t.out)
	return join(out), nil
}

func (t *translator) run() error {
	for t.pos < len(t.in) {
		tok := t.in[t.pos]
		t.pos++
		if err := t.step(tok); err != nil {
			return err
		}
	}
	for len(t.frames) > 0 && t.frames[len(t.frames)-1].kw {
		t.closeKw()
	}
	if len(t.frames) > 0 {
		return fmt.Errorf("unclosed %q", t.out[t.frames[len(t.frames)-1].open].text)
	}
	return nil
}

func (t *translator) step(tok token) error {
	switch {
	case tok.kind == tOp && tok.text == "|":
		return t.pipe()
	case tok.kind == tOp && tok.text == "~":
		t.emit(token{kind: tOp, text: ".."})
	case tok.kind == tIdent && tok.text == "is" && t.chainStart() < len(t.out):
		return t.test()
	case tok.kind == tIdent:
		t.ident(tok)
	case tok.kind == tOpen:
		t.open(tok)
	case tok.kind == tClose:
		return t.close(tok)
	case tok.kind == tOp && tok.text == ",":
		for len(t.frames) > 0 && t.frames[len(t.frames)-1].kw {
			t.closeKw()
		}
		t.emit(tok)
	default:
		t.emit(tok)
	}
	return nil
}

func (t *translator) emit(tok token) { t.out = append(t.out, tok) }

func (t *translator) ident(tok token) {
	if t.kwStart(tok) {
		return
	}
	next := t.peek()
	call := next.kind == tOpen && next.text == "("
	switch tok.text {
	case "True", "true":
		tok.text = "true"
	case "False", "false":
		tok.text = "false"
	case "None", "none", "null":
		if !call {
			tok.text = "nil"
		}
	}
	t.emit(tok)
}

// kwStart turns `name=` inside a call's argument list into `__kw("name", `.
func (t *translator) kwStart(tok token) bool {
	if len(t.frames) == 0 || !t.frames[len(t.frames)-1].isCall {
		return false
	}
	if n := t.peek(); n.kind != tOp || n.text != "=" {
		return false
	}
	if last := t.out[len(t.out)-1]; !(last.kind == tOpen || last.kind == tOp && last.text == ",") {
		return false
	}
	t.pos++ // skip '='
	t.emit(token{kind: tIdent, text: "__kw"})
	t.frames = append(t.frames, frame{open: len(t.out), kw: true})
	t.emit(token{kind: tOpen, text: "("})
	t.emit(token{kind: tString, text: strconv.Quote(tok.text)})
	t.emit(token{kind: tOp, text: ","})
	return true
}

func (t *translator) closeKw() {
	f := t.frames[len(t.frames)-1]
	t.frames = t.frames[:len(t.frames)-1]
	t.out = append(t.out, token{kind: tClose, text: ")", back: len(t.out) - f.open})
}

func (t *translator) peek() token {
	if t.pos < len(t.in) {
		return t.in[t.pos]
	}
	return token{kind: tOp}
}

func (t *translator) open(tok token) {
	isCall := false
	if tok.text == "(" && len(t.out) > 0 {
		last := t.out[len(t.out)-1]
		isCall = last.kind == tIdent && !keywords[last.text] || last.kind == tClose
	}
	t.frames = append(t.frames, frame{open: len(t.out), isCall: isCall})
	t.emit(tok)
}

var pairs = map[string]string{")": "(", "]": "[", "}": "{"}

func (t *translator) close(tok token) error {
	for len(t.frames) > 0 && t.frames[len(t.frames)-1].kw {
		t.closeKw()
	}
	if len(t.frames) == 0 {
		return fmt.Errorf("unexpected %q", tok.text)
	}
	f := t.frames[len(t.frames)-1]
	if t.out[f.open].text != pairs[tok.text] {
		return fmt.Errorf("%q closed by %q", t.out[f.open].text, tok.text)
	}
	t.frames = t.frames[:len(t.frames)-1]
	if last := t.out[len(t.out)-1]; last.kind == tOp && last.text == "," && tok.text == ")" {
		t.out = t.out[:len(t.out)-1]
	}
	tok.back = len(t.out) - f.open
	t.emit(tok)
	return nil
}

// chainStart returns the index in out where the operand ending at the end
// of out starts: a primary followed by .member, [index] and (call) suffixes.
func (t *translator) chainStart() int {
	i := len(t.out)
	for i > 0 {
		tok := t.out[i-1]
		switch {
		case tok.kind == tClose:
			j := i - 1 - tok.back
			i = j
			open := t.out[j].text
			if open == "{" || j == 0 {
				return i
			}
			prev := t.out[j-1]
			if !(prev.kind == tIdent && !keywords[prev.text] || prev.kind == tClose || prev.kind == tString && open == "[") {
				return i
			}
		case tok.kind == tIdent && !keywords[tok.text], tok.kind == tNumber, tok.kind == tString:
			i--
			if i == 0 || t.out[i-1].kind != tOp || (t.out[i-1].text != "." && t.out[i-1].text != "?.") {
				return i
			}
			i--
		default:
			return i
		}
	}
	return i
}

// pipe rewrites `operand | name(args)` into `f_name(operand, args)`.
func (t *translator) pipe() error {
	start := t.chainStart()
	if start == len(t.out) {
		return fmt.Errorf("filter pipe '|' without a value on its left")
	}
	name := t.peek()
	if name.kind != tIdent {
		return fmt.Errorf("expected a filter name after '|'")
	}
	t.pos++
	if !isFilter(name.text) {
		return fmt.Errorf("unknown filter %q", name.text)
	}
	t.wrapCall(start, "f_"+name.text)
	return nil
}

// test rewrites `operand is [not] name(args)` into `[not] is_name(operand, args)`.
func (t *translator) test() error {
	start := t.chainStart()
	negate := false
	if n := t.peek(); n.kind == tIdent && n.text == "not" {
		negate = true
		t.pos++
	}
	name := t.peek()
	if name.kind != tIdent {
		return fmt.Errorf("expected a test name after 'is'")
	}
	t.pos++
	if !isTest(name.text) {
		return fmt.Errorf("unknown test %q", name.text)
	}
	if negate {
		operand := append([]token(nil), t.out[start:]...)
		t.out = t.out[:start]
		t.emit(token{kind: tIdent, text: "not"})
		t.out = append(t.out, operand...)
		start++
	}
	t.wrapCall(start, "is_"+name.text)
	return nil
}

// wrapCall replaces out[start:] by `fn(out[start:]` and either closes the call
// or, when the input continues with '(', leaves its argument list open.
func (t *translator) wrapCall(start int, fn string) {
	operand := append([]token(nil), t.out[start:]...)
	t.out = t.out[:start]
	t.emit(token{kind: tIdent, text: fn})
	open := len(t.out)
	t.emit(token{kind: tOpen, text: "("})
	t.out = append(t.out, operand...)
	if n := t.peek(); n.kind == tOpen && n.text == "(" {
		t.pos++
		t.emit(token{kind: tOp, text: ","})
		t.frames = append(t.frames, frame{open: open, isCall: true})
		return
	}
	t.out = append(t.out, token{kind: tClose, text: ")", back: len(t.out) - open})
}

// ternary rewrites a top-level Python conditional `a if c else b`.
func ternary(toks []token) []token {
	depth, ifAt, elseAt := 0, -1, -1
	for i, tok := range toks {
		switch {
		case tok.kind == tOpen:
			depth++
		case tok.kind == tClose:
			depth--
		case depth == 0 && tok.kind == tIdent && tok.text == "if" && i > 0 && ifAt < 0:
			ifAt = i
		case depth == 0 && tok.kind == tIdent && tok.text == "else" && ifAt >= 0 && elseAt < 0:
			elseAt = i
		}
	}
	if ifAt < 0 {
		return toks
	}
	a, c, b := toks[:ifAt], toks[ifAt+1:], []token{{kind: tString, text: `""`}}
	if elseAt >= 0 {
		c, b = toks[ifAt+1:elseAt], ternary(toks[elseAt+1:])
	}
	out := []token{{kind: tOpen, text: "("}}
	out = append(out, c...)
	out = append(out, token{kind: tClose, text: ")"}, token{kind: tOp, text: "?"}, token{kind: tOpen, text: "("})
	out = append(out, a...)
	out = append(out, token{kind: tClose, text: ")"}, token{kind: tOp, text: ":"}, token{kind: tOpen, text: "("})
	out = append(out, b...)
	return append(out, token{kind: tClose, text: ")"})
}

func join(toks []token) string {
	var b strings.Builder
	for i, tok := range toks {
		if i > 0 && !tight(toks[i-1], tok) {
			b.WriteByte(' ')
		}
		b.WriteString(tok.text)
	}
	return b.String()
}

// tight reports whether two tokens must not be separated by a space.
func tight(prev, cur token) bool {
	dot := func(t token) bool { return t.kind == tOp && (t.text == "." || t.text == "?.") }
	return dot(prev) || dot(cur) || cur.kind == tOpen && cur.text != "{" && (prev.kind == tIdent || prev.kind == tClose)
}
