package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// tokenKind classifies a token of SQL text.
type tokenKind int

const (
	tokIdent  tokenKind = iota // unquoted identifier or keyword, lower-cased
	tokQuoted                  // "quoted", `quoted` or [quoted] identifier
	tokString                  // 'string literal', unescaped
	tokOther                   // number, parameter or punctuation
)

// token is one lexical unit of a SQL statement.
type token struct {
	kind tokenKind
	text string
	pos  int
}

// is reports whether t is the punctuation p.
func (t token) is(p string) bool { return t.kind == tokOther && t.text == p }

// errUnterminated reports an unterminated literal or comment.
var errUnterminated = errors.New("unterminated")

// lexCache keeps the tokens of the statements a store was asked to write: callers
// send the same few SQL texts over and over with other arguments, and lexing them
// was most of checking a request. Tokens are never modified once lexed.
type lexCache struct {
	mu sync.Mutex
	m  map[string][]token
}

// maxLexCached bounds the cache; it starts over when full.
const maxLexCached = 256

// tokens is lex(sql), from the cache when sql was lexed before.
func (c *lexCache) tokens(sql string) ([]token, error) {
	c.mu.Lock()
	toks, ok := c.m[sql]
	c.mu.Unlock()
	if ok {
		return toks, nil
	}
	toks, err := lex(sql)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxLexCached {
		c.m = map[string][]token{}
	}
	c.m[sql] = toks
	c.mu.Unlock()
	return toks, nil
}

// lex splits SQL into tokens, skipping white space and comments. It knows just
// enough SQLite syntax to tell identifiers, literals and punctuation apart.
func lex(sql string) ([]token, error) {
	var toks []token
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case strings.HasPrefix(sql[i:], "--"):
			i = skipLine(sql, i)
		case strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("offset %d: %w comment", i, errUnterminated)
			}
			i += end + 4
		case c == '\'' || c == '"' || c == '`' || c == '[':
			t, next, err := lexQuoted(sql, i)
			if err != nil {
				return nil, err
			}
			toks, i = append(toks, t), next
		case isIdentStart(sql, i):
			next := identEnd(sql, i)
			toks = append(toks, token{kind: tokIdent, text: strings.ToLower(sql[i:next]), pos: i})
			i = next
		default:
			next := otherEnd(sql, i)
			toks = append(toks, token{kind: tokOther, text: sql[i:next], pos: i})
			i = next
		}
	}
	return toks, nil
}

// skipLine returns the offset after the end of the line holding offset i.
func skipLine(sql string, i int) int {
	if nl := strings.IndexByte(sql[i:], '\n'); nl >= 0 {
		return i + nl + 1
	}
	return len(sql)
}

// lexQuoted reads a string literal or quoted identifier starting at i; a
// doubled closing quote is an escaped quote.
func lexQuoted(sql string, i int) (token, int, error) {
	open := sql[i]
	closeCh, kind := open, tokQuoted
	switch open {
	case '\'':
		kind = tokString
	case '[':
		closeCh = ']'
	}
	var b strings.Builder
	for j := i + 1; j < len(sql); j++ {
		if sql[j] != closeCh {
			b.WriteByte(sql[j])
			continue
		}
		if closeCh != ']' && j+1 < len(sql) && sql[j+1] == closeCh {
			b.WriteByte(closeCh)
			j++
			continue
		}
		return token{kind: kind, text: b.String(), pos: i}, j + 1, nil
	}
	return token{}, 0, fmt.Errorf("offset %d: %w literal", i, errUnterminated)
}

// isIdentStart reports whether an unquoted identifier starts at i.
func isIdentStart(sql string, i int) bool {
	r, _ := utf8.DecodeRuneInString(sql[i:])
	return r == '_' || unicode.IsLetter(r)
}

// identEnd returns the offset after the identifier starting at i.
func identEnd(sql string, i int) int {
	for i < len(sql) {
		r, n := utf8.DecodeRuneInString(sql[i:])
		if r != '_' && r != '$' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		i += n
	}
	return i
}

// otherEnd returns the end of a number or parameter (runs of letters, digits,
// '.', '_', '$' after the first character) or of one punctuation character.
func otherEnd(sql string, i int) int {
	c := sql[i]
	if !(c >= '0' && c <= '9') && c != '?' && c != ':' && c != '@' && c != '$' && c != '.' {
		return i + 1
	}
	j := i + 1
	for j < len(sql) {
		d := sql[j]
		if !(d == '_' || d == '.' || d == '$' || d >= '0' && d <= '9' || d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z') {
			break
		}
		j++
	}
	return j
}
