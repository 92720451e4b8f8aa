package inventory

import "fmt"

// token is one word of an INI host line and the 1-based column it starts at.
type token struct {
	text string
	col  int
}

// splitWords splits an INI host line the way Ansible does (Python's
// shlex.split(line, comments=True)): words are separated by blanks, single
// and double quotes group and are removed, a backslash escapes the next
// character (inside double quotes only " and \), and an unquoted # starts a
// comment. On error it returns the column of the problem.
func splitWords(line string) ([]token, int, error) {
	var out []token
	var cur []byte
	inWord, start := false, 0
	emit := func() {
		if inWord {
			out = append(out, token{string(cur), start + 1})
		}
		cur, inWord = cur[:0:0], false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			emit()
			continue
		case c == '#':
			emit()
			return out, 0, nil
		}
		if !inWord {
			inWord, start = true, i
		}
		switch c {
		case '\'':
			j := i + 1
			for j < len(line) && line[j] != '\'' {
				j++
			}
			if j >= len(line) {
				return nil, i + 1, fmt.Errorf("no closing quotation")
			}
			cur = append(cur, line[i+1:j]...)
			i = j
		case '"':
			j, ok := doubleQuoted(line, i+1, &cur)
			if !ok {
				return nil, i + 1, fmt.Errorf("no closing quotation")
			}
			i = j
		case '\\':
			if i+1 >= len(line) {
				return nil, i + 1, fmt.Errorf("no escaped character")
			}
			cur = append(cur, line[i+1])
			i++
		default:
			cur = append(cur, c)
		}
	}
	emit()
	return out, 0, nil
}

// doubleQuoted copies a "..." body starting after the quote into cur and
// returns the index of the closing quote.
func doubleQuoted(line string, i int, cur *[]byte) (int, bool) {
	for ; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			return i, true
		case c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
			*cur = append(*cur, line[i+1])
			i++
		default:
			*cur = append(*cur, c)
		}
	}
	return i, false
}
