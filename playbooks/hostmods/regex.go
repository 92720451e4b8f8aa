package hostmods

import (
	"fmt"
	"regexp"
	"strings"

	"orch/playbooks"
)

// compileRegexp compiles an Ansible (Python) regular expression with Go's RE2, which has
// the same syntax for everything but look-around and backreferences inside the pattern:
// those are refused with a message naming the argument.
func compileRegexp(arg, expr, flags string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(flags + expr)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %s: %w (look-around and backreferences in patterns are not supported)", playbooks.ErrArgs, arg, expr, err)
	}
	return re, nil
}

// pyTemplate turns a Python replacement template (\1, \g<1>, \g<name>, \n, \t, \\) into a
// Go regexp.Expand template ($ doubled).
func pyTemplate(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '$' {
			b.WriteString("$$")
			continue
		}
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch n := s[i]; {
		case n >= '0' && n <= '9':
			j := i + 1
			if j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			b.WriteString("${" + s[i:j] + "}")
			i = j - 1
		case n == 'g' && i+1 < len(s) && s[i+1] == '<':
			if end := strings.IndexByte(s[i:], '>'); end > 0 {
				b.WriteString("${" + s[i+2:i+end] + "}")
				i += end
				continue
			}
			b.WriteString(`\g`)
		case n == 'n':
			b.WriteByte('\n')
		case n == 't':
			b.WriteByte('\t')
		case n == 'r':
			b.WriteByte('\r')
		case n == '\\':
			b.WriteByte('\\')
		default:
			b.WriteByte('\\')
			b.WriteByte(n)
		}
	}
	return b.String()
}
