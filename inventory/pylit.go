package inventory

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// iniValue converts an INI variable value the way Ansible's INI plugin does
// (InventoryModule._parse_value): it is evaluated as a Python literal with
// ast.literal_eval, and kept as the original string when that fails. So
// 8080 is an int, True a bool, [1, 'a'] a list, {'k': 1} a map, None nil,
// and FALSE or /var/lib a string.
//
// Go types: int, float64, bool, string, nil, []any (lists, tuples, sets) and
// map[string]any (dict keys are turned into strings as JSON would). Integers
// that do not fit in 64 bits, complex numbers, infinities and \N{...}
// escapes stay strings.
func iniValue(s string) any {
	v, ok := parsePyLiteral(s)
	if !ok {
		return s
	}
	return v
}

// maxPyDepth bounds container nesting (CPython's parser stops near 200).
const maxPyDepth = 100

type pyParser struct {
	s     string
	i     int
	depth int
}

// parsePyLiteral evaluates s as one Python literal expression.
func parsePyLiteral(s string) (any, bool) {
	p := &pyParser{s: s}
	p.skipSpace()
	v, ok := p.value()
	if !ok {
		return nil, false
	}
	p.skipSpace()
	return v, p.i == len(p.s)
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// skipSpace skips blanks and a trailing # comment.
func (p *pyParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\f':
			p.i++
		case '#':
			p.i = len(p.s)
		default:
			return
		}
	}
}

func (p *pyParser) value() (any, bool) {
	c := p.peek()
	switch {
	case c == '[':
		return p.container('[', ']')
	case c == '(':
		return p.container('(', ')')
	case c == '{':
		return p.container('{', '}')
	case c == '\'' || c == '"':
		return p.strings()
	case c == '+' || c == '-':
		return p.signed()
	case isDigit(c) || c == '.' && p.i+1 < len(p.s) && isDigit(p.s[p.i+1]):
		return p.number()
	case isIdentStart(c):
		return p.word()
	}
	return nil, false
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdent(c byte) bool      { return isIdentStart(c) || isDigit(c) }

// word handles True, False, None and string prefixes (r, b, u, br, rb).
func (p *pyParser) word() (any, bool) {
	start := p.i
	for p.i < len(p.s) && isIdent(p.s[p.i]) {
		p.i++
	}
	w := p.s[start:p.i]
	if q := p.peek(); (q == '\'' || q == '"') && isStringPrefix(w) {
		p.i = start
		return p.strings()
	}
	switch w {
	case "True":
		return true, true
	case "False":
		return false, true
	case "None":
		return nil, true
	}
	return nil, false
}

func isStringPrefix(w string) bool {
	switch strings.ToLower(w) {
	case "r", "u", "b", "br", "rb":
		return true
	}
	return false
}

// signed handles one unary + or - before a number, as literal_eval allows.
func (p *pyParser) signed() (any, bool) {
	neg := p.s[p.i] == '-'
	p.i++
	p.skipSpace()
	c := p.peek()
	if !isDigit(c) && c != '.' {
		return nil, false
	}
	v, ok := p.number()
	if !ok || !neg {
		return v, ok
	}
	switch n := v.(type) {
	case int:
		return -n, true
	case float64:
		return -n, true
	}
	return nil, false
}

// number parses a Python int or float literal.
func (p *pyParser) number() (any, bool) {
	start := p.i
	for p.i < len(p.s) && (isIdent(p.s[p.i]) || p.s[p.i] == '.' ||
		(p.s[p.i] == '+' || p.s[p.i] == '-') && (p.s[p.i-1] == 'e' || p.s[p.i-1] == 'E') && !isHexLit(p.s[start:p.i])) {
		p.i++
	}
	return pyNumber(p.s[start:p.i])
}

func isHexLit(s string) bool { return len(s) > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') }

func pyNumber(tok string) (any, bool) {
	if !validUnderscores(tok) {
		return nil, false
	}
	clean := strings.ReplaceAll(tok, "_", "")
	lower := strings.ToLower(clean)
	if len(lower) > 1 && lower[0] == '0' && strings.ContainsAny(lower[1:2], "xob") {
		n, err := strconv.ParseInt(lower, 0, 64)
		return int(n), err == nil
	}
	if strings.ContainsAny(lower, ".e") {
		f, err := strconv.ParseFloat(lower, 64)
		if err != nil || math.IsInf(f, 0) || strings.ContainsAny(lower, "xpn") {
			return nil, false
		}
		return f, true
	}
	if strings.TrimLeft(lower, "0") != "" && lower[0] == '0' {
		return nil, false // 012 is a SyntaxError in Python 3
	}
	n, err := strconv.ParseInt(lower, 10, 64)
	return int(n), err == nil
}

// validUnderscores reports whether every _ in a number sits between two
// digits, as Python requires.
func validUnderscores(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if tok[i] != '_' {
			continue
		}
		if i == 0 || i == len(tok)-1 || !isHexDigit(tok[i+1]) || !isHexDigit(tok[i-1]) && !(i == 2 && tok[0] == '0') {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// strings parses one or more adjacent string literals and concatenates them.
func (p *pyParser) strings() (any, bool) {
	var sb strings.Builder
	kind := -1 // 0 text, 1 bytes
	for {
		start := p.i
		for p.i < len(p.s) && isIdent(p.s[p.i]) {
			p.i++
		}
		prefix := strings.ToLower(p.s[start:p.i])
		if q := p.peek(); (prefix != "" && !isStringPrefix(prefix)) || (q != '\'' && q != '"') {
			p.i = start
			break
		}
		k := 0
		if strings.Contains(prefix, "b") {
			k = 1
		}
		if kind >= 0 && k != kind {
			return nil, false
		}
		kind = k
		s, ok := p.quoted(strings.Contains(prefix, "r"), k == 1)
		if !ok {
			return nil, false
		}
		sb.WriteString(s)
		p.skipSpace()
	}
	return sb.String(), kind >= 0
}

// quoted parses one quoted literal starting at the opening quote.
func (p *pyParser) quoted(raw, bytes bool) (string, bool) {
	q := p.s[p.i : p.i+1]
	if strings.HasPrefix(p.s[p.i:], q+q+q) {
		q = q + q + q
	}
	p.i += len(q)
	var sb strings.Builder
	for p.i < len(p.s) {
		if strings.HasPrefix(p.s[p.i:], q) {
			p.i += len(q)
			return sb.String(), true
		}
		c := p.s[p.i]
		if c != '\\' {
			if bytes && c >= 0x80 {
				return "", false // bytes literals may hold only ASCII
			}
			sb.WriteByte(c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			return "", false
		}
		if raw {
			sb.WriteString(p.s[p.i : p.i+2])
			p.i += 2
			continue
		}
		if !p.escape(&sb, bytes) {
			return "", false
		}
	}
	return "", false
}

// escape decodes one backslash escape of a non-raw literal.
func (p *pyParser) escape(sb *strings.Builder, bytes bool) bool {
	c := p.s[p.i+1]
	simple := map[byte]byte{'\\': '\\', '\'': '\'', '"': '"', 'a': 7, 'b': 8, 'f': 12, 'n': 10, 'r': 13, 't': 9, 'v': 11}
	if r, ok := simple[c]; ok {
		sb.WriteByte(r)
		p.i += 2
		return true
	}
	switch {
	case c >= '0' && c <= '7':
		j := p.i + 1
		for j < len(p.s) && j < p.i+4 && p.s[j] >= '0' && p.s[j] <= '7' {
			j++
		}
		n, _ := strconv.ParseUint(p.s[p.i+1:j], 8, 32)
		p.i = j
		return writeCode(sb, rune(n), bytes)
	case c == 'x':
		return p.hexEscape(sb, 2, bytes)
	case c == 'u' && !bytes:
		return p.hexEscape(sb, 4, false)
	case c == 'U' && !bytes:
		return p.hexEscape(sb, 8, false)
	case c == 'N' && !bytes:
		return false // named escapes are not supported
	}
	sb.WriteString(p.s[p.i : p.i+2])
	p.i += 2
	return true
}

func (p *pyParser) hexEscape(sb *strings.Builder, n int, bytes bool) bool {
	start := p.i + 2
	if start+n > len(p.s) {
		return false
	}
	v, err := strconv.ParseUint(p.s[start:start+n], 16, 32)
	if err != nil || v > utf8.MaxRune {
		return false
	}
	p.i = start + n
	return writeCode(sb, rune(v), bytes)
}

func writeCode(sb *strings.Builder, r rune, bytes bool) bool {
	if bytes {
		if r > 0xff {
			return false
		}
		sb.WriteByte(byte(r))
		return true
	}
	sb.WriteRune(r)
	return true
}

// container parses a list, tuple, parenthesized value, dict or set.
func (p *pyParser) container(open, close byte) (any, bool) {
	if p.depth++; p.depth > maxPyDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	p.i++
	p.skipSpace()
	if p.peek() == close {
		p.i++
		if open == '{' {
			return map[string]any{}, true
		}
		return []any{}, true
	}
	first, ok := p.value()
	if !ok {
		return nil, false
	}
	p.skipSpace()
	if open == '{' && p.peek() == ':' {
		return p.dictRest(first)
	}
	if open == '(' && p.peek() == ')' {
		p.i++
		return first, true // parenthesized value, not a tuple
	}
	items := []any{first}
	for {
		switch p.peek() {
		case close:
			p.i++
			if open == '{' {
				return dedupe(items)
			}
			return items, true
		case ',':
			p.i++
			p.skipSpace()
			if p.peek() == close {
				continue
			}
			v, ok := p.value()
			if !ok {
				return nil, false
			}
			items = append(items, v)
			p.skipSpace()
		default:
			return nil, false
		}
	}
}

// dictRest parses the rest of a dict whose first key is parsed.
func (p *pyParser) dictRest(key any) (any, bool) {
	out := map[string]any{}
	for {
		if p.peek() != ':' {
			return nil, false
		}
		p.i++
		p.skipSpace()
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		k, ok := pyKey(key)
		if !ok {
			return nil, false
		}
		out[k] = v
		p.skipSpace()
		switch p.peek() {
		case '}':
			p.i++
			return out, true
		case ',':
			p.i++
			p.skipSpace()
			if p.peek() == '}' {
				p.i++
				return out, true
			}
			if key, ok = p.value(); !ok {
				return nil, false
			}
			p.skipSpace()
		default:
			return nil, false
		}
	}
}

// pyKey turns a hashable Python key into the string JSON would use.
func pyKey(k any) (string, bool) {
	switch x := k.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "null", true
	}
	return "", false // lists and dicts are unhashable
}

// dedupe keeps the first of equal set members (sets become lists); like
// Python it refuses unhashable members.
func dedupe(items []any) ([]any, bool) {
	var out []any
	seen := map[string]bool{}
	for _, it := range items {
		k, ok := pyKey(it)
		if !ok {
			return nil, false
		}
		k = fmt.Sprintf("%T:%s", it, k)
		if !seen[k] {
			seen[k] = true
			out = append(out, it)
		}
	}
	return out, true
}
