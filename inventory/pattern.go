package inventory

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
)

var (
	// patternWords splits a pattern on ':' while keeping [x:y] whole
	// (split_host_pattern's fallback).
	patternWords = regexp.MustCompile(`(?:[^\s:\[\]]|\[[^\]]*\])+`)
	// patternSubscript is a pattern followed by [i], [-i], [x:y] or [x:]
	// (PATTERN_WITH_SUBSCRIPT).
	patternSubscript = regexp.MustCompile(`^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$`)
	// hostnameish is the host part of "host:port" in a pattern.
	hostnameish = regexp.MustCompile(`^(?:[A-Za-z0-9_.\-]|\[[^\]]*\])+$`)
)

// Select returns the hosts matching an Ansible host pattern, in Ansible's
// order, and the warnings Ansible would print (a pattern that matches no
// group or host is ignored with a warning).
//
// A pattern is a list of terms separated by ',' (or ':', kept for
// compatibility): all or *, a group or host name, a glob (web*,
// *.example.com), a regex (~web\d+, matched at the start of the name), any
// of them with a subscript (web[0], web[-1], web[0:2], web[1:]); a term
// prefixed with & intersects and one prefixed with ! excludes. As in
// Ansible, plain terms are applied first, then the & terms, then the !
// terms, whatever order they are written in.
func (inv *Inventory) Select(pattern string) ([]*Host, []string, error) {
	terms := splitPattern(pattern)
	if len(terms) == 0 {
		return nil, nil, &Error{Subject: patternSubject(pattern), Err: fmt.Errorf("%w: empty pattern", ErrBadPattern)}
	}
	return inv.evaluate(terms)
}

// Limit keeps the hosts that also match pattern, in their order, as
// ansible-playbook --limit does. A term @FILE reads one pattern per line
// from FILE. An empty pattern limits nothing.
func (inv *Inventory) Limit(hosts []*Host, pattern string) ([]*Host, []string, error) {
	if strings.TrimSpace(pattern) == "" {
		return hosts, nil, nil
	}
	var terms []string
	for _, t := range splitPattern(pattern) {
		if !strings.HasPrefix(t, "@") {
			terms = append(terms, t)
			continue
		}
		lines, err := readLimitFile(t[1:])
		if err != nil {
			return nil, nil, err
		}
		terms = append(terms, lines...)
	}
	sel, warnings, err := inv.evaluate(terms)
	if err != nil {
		return nil, warnings, err
	}
	keep := map[*Host]bool{}
	for _, h := range sel {
		keep[h] = true
	}
	var out []*Host
	for _, h := range hosts {
		if keep[h] {
			out = append(out, h)
		}
	}
	return out, warnings, nil
}

func readLimitFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Subject: patternSubject("@" + path), Err: fmt.Errorf("%w: limit file: %w", ErrBadPattern, err)}
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

func patternSubject(p string) string { return fmt.Sprintf("pattern %q", p) }

// splitPattern splits a pattern into terms (split_host_pattern): on commas
// when there are any, else on colons, except that an IPv6 address or
// host:port stays whole.
func splitPattern(pattern string) []string {
	var terms []string
	switch {
	case strings.Contains(pattern, ","):
		terms = strings.Split(pattern, ",")
	case isAddress(strings.TrimSpace(pattern)):
		terms = []string{pattern}
	default:
		terms = patternWords.FindAllString(pattern, -1)
	}
	var out []string
	for _, t := range terms {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func isAddress(p string) bool {
	if net.ParseIP(p) != nil {
		return true
	}
	if m := bracketedHostPort.FindStringSubmatch(p); m != nil {
		return net.ParseIP(m[1]) != nil
	}
	if m := hostPort.FindStringSubmatch(p); m != nil {
		return hostnameish.MatchString(m[1])
	}
	return false
}

// orderTerms puts plain terms first, then & terms, then ! terms; with no
// plain term it starts from all (order_patterns).
func orderTerms(terms []string) []string {
	var plain, and, not []string
	for _, t := range terms {
		switch t[0] {
		case '!':
			not = append(not, t)
		case '&':
			and = append(and, t)
		default:
			plain = append(plain, t)
		}
	}
	if len(plain) == 0 {
		plain = []string{AllGroup}
	}
	return append(append(plain, and...), not...)
}

// evaluate applies terms in Ansible's order (_evaluate_patterns).
func (inv *Inventory) evaluate(terms []string) ([]*Host, []string, error) {
	var hosts []*Host
	var warnings []string
	in := map[*Host]bool{}
	for _, t := range orderTerms(terms) {
		if h := inv.hostByName[t]; h != nil {
			if !in[h] {
				hosts, in[h] = append(hosts, h), true
			}
			continue
		}
		that, warn, err := inv.matchTerm(t)
		if err != nil {
			return nil, warnings, err
		}
		warnings = append(warnings, warn...)
		hosts, in = combine(hosts, in, that, t[0])
	}
	return hosts, warnings, nil
}

// combine applies one term's hosts to the running selection.
func combine(hosts []*Host, in map[*Host]bool, that []*Host, op byte) ([]*Host, map[*Host]bool) {
	thatSet := map[*Host]bool{}
	for _, h := range that {
		thatSet[h] = true
	}
	switch op {
	case '!', '&':
		var out []*Host
		outSet := map[*Host]bool{}
		for _, h := range hosts {
			if thatSet[h] == (op == '&') {
				out, outSet[h] = append(out, h), true
			}
		}
		return out, outSet
	}
	for _, h := range that {
		if !in[h] {
			hosts, in[h] = append(hosts, h), true
		}
	}
	return hosts, in
}

// matchTerm returns the hosts of one term, ignoring its & or ! prefix
// (_match_one_pattern).
func (inv *Inventory) matchTerm(term string) ([]*Host, []string, error) {
	body := term
	if body[0] == '&' || body[0] == '!' {
		body = body[1:]
	}
	if body == "" {
		return nil, nil, &Error{Subject: patternSubject(term), Err: fmt.Errorf("%w: empty term", ErrBadPattern)}
	}
	expr, sub, err := splitSubscript(body)
	if err != nil {
		return nil, nil, &Error{Subject: patternSubject(term), Err: err}
	}
	hosts, warnings, err := inv.enumerate(expr)
	if err != nil {
		return nil, nil, &Error{Subject: patternSubject(term), Err: err}
	}
	hosts, err = sub.apply(hosts)
	if err != nil {
		return nil, nil, &Error{Subject: patternSubject(term), Err: err}
	}
	if sub.dash {
		warnings = append(warnings, "Use [x:y] inclusive subscripts instead of [x-y] which has been removed")
	}
	return hosts, warnings, nil
}

// enumerate returns the hosts of the groups whose name matches expr, then,
// when no group matched or expr is a glob or regex, the hosts whose name
// matches; each host once (_enumerate_matches).
func (inv *Inventory) enumerate(expr string) ([]*Host, []string, error) {
	re, err := compileTerm(expr)
	if err != nil {
		return nil, nil, err
	}
	var out []*Host
	seen := map[*Host]bool{}
	add := func(h *Host) {
		if !seen[h] {
			out, seen[h] = append(out, h), true
		}
	}
	groupMatched := false
	for _, g := range inv.groups {
		if re.MatchString(g.Name) {
			groupMatched = true
			for _, h := range g.allHosts() {
				add(h)
			}
		}
	}
	if !groupMatched || expr[0] == '~' || strings.ContainsAny(expr, ".?*[") {
		for _, h := range inv.hosts {
			if re.MatchString(h.Name) {
				add(h)
			}
		}
	}
	if len(out) == 0 && !groupMatched && expr != AllGroup {
		return nil, []string{"Could not match supplied host pattern, ignoring: " + expr}, nil
	}
	return out, nil, nil
}

// compileTerm compiles a ~regex (matched at the start of names, like
// Python's re.match) or a shell glob (whole name, like fnmatch).
func compileTerm(expr string) (*regexp.Regexp, error) {
	src := globToRegexp(expr)
	if expr[0] == '~' {
		src = `^(?:` + expr[1:] + `)`
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPattern, err)
	}
	return re, nil
}

// globToRegexp translates a shell glob as Python's fnmatch.translate does:
// * any string, ? one character, [seq] and [!seq] character sets, and a [
// without its ] a literal.
func globToRegexp(glob string) string {
	var sb strings.Builder
	sb.WriteString(`^(?s:`)
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; c {
		case '*':
			sb.WriteString(`.*`)
		case '?':
			sb.WriteString(`.`)
		case '[':
			j := i + 1
			if j < len(glob) && glob[j] == '!' {
				j++
			}
			if j < len(glob) && glob[j] == ']' {
				j++
			}
			for j < len(glob) && glob[j] != ']' {
				j++
			}
			if j >= len(glob) {
				sb.WriteString(`\[`)
				continue
			}
			sb.WriteString(globClass(glob[i+1 : j]))
			i = j
		default:
			sb.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	sb.WriteString(`)$`)
	return sb.String()
}

func globClass(body string) string {
	var sb strings.Builder
	sb.WriteByte('[')
	if strings.HasPrefix(body, "!") {
		sb.WriteByte('^')
		body = body[1:]
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '\\', '[', ']', '^':
			sb.WriteByte('\\')
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte(']')
	return sb.String()
}

// subscript is a parsed [i] or [x:y] suffix of a term.
type subscript struct {
	set        bool // false: no subscript
	start, end int
	hasEnd     bool // [x:y] or [x:] rather than [i]
	dash       bool // written [x-y], which Ansible still accepts with a warning
}

// splitSubscript separates a subscript from a non-regex term
// (_split_subscript).
func splitSubscript(term string) (string, subscript, error) {
	m := patternSubscript.FindStringSubmatch(term)
	if term[0] == '~' || m == nil {
		return term, subscript{}, nil
	}
	if m[2] != "" {
		i, err := strconv.Atoi(m[2])
		if err != nil {
			return "", subscript{}, fmt.Errorf("%w: subscript [%s]: %w", ErrBadPattern, m[2], err)
		}
		return m[1], subscript{set: true, start: i}, nil
	}
	start, err := strconv.Atoi(m[3])
	end := -1
	if err == nil && m[5] != "" {
		end, err = strconv.Atoi(m[5])
	}
	if err != nil {
		return "", subscript{}, fmt.Errorf("%w: subscript [%s%s%s]: %w", ErrBadPattern, m[3], m[4], m[5], err)
	}
	return m[1], subscript{set: true, start: start, end: end, hasEnd: true, dash: m[4] == "-"}, nil
}

// apply selects hosts by the subscript (_apply_subscript): [i] is one host
// (negative counts from the end) and must exist; [x:y] is x to y inclusive,
// [x:] x to the last. As in Ansible, [x:0] means [x].
func (s subscript) apply(hosts []*Host) ([]*Host, error) {
	if !s.set || len(hosts) == 0 {
		return hosts, nil
	}
	if s.hasEnd && s.end != 0 {
		end := s.end
		if end == -1 {
			end = len(hosts) - 1
		}
		lo, hi := min(s.start, len(hosts)), min(end+1, len(hosts))
		if lo >= hi {
			return nil, nil
		}
		return hosts[lo:hi], nil
	}
	i := s.start
	if i < 0 {
		i += len(hosts)
	}
	if i < 0 || i >= len(hosts) {
		return nil, fmt.Errorf("%w: no hosts matched the subscript [%d] (%d hosts)", ErrBadPattern, s.start, len(hosts))
	}
	return hosts[i : i+1], nil
}
