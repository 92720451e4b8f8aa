package inventory

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// maxRangeHosts bounds how many names one host pattern may expand to, so a
// typo like node[0:99999999] fails instead of exhausting memory.
const maxRangeHosts = 100000

const asciiLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

var (
	// bracketedHostPort is "[host]:port" (Ansible's parse_address).
	bracketedHostPort = regexp.MustCompile(`^\[(.+)\]:(\d+)$`)
	// hostPort is "host:port" where host has no colon outside [ranges].
	hostPort = regexp.MustCompile(`^((?:[^:\[\]]|\[[^\]]*\])+):(\d+)$`)
)

// expandHostPattern turns one inventory host entry such as "db[01:03]:2222"
// into host names and an optional port (0 when none), as Ansible's
// _expand_hostpattern does. pos is where the entry starts; errors point at
// the offending range.
func expandHostPattern(entry string, pos Pos) ([]string, int, error) {
	name, port := splitHostPort(entry)
	if !strings.Contains(name, "[") {
		return []string{name}, port, nil
	}
	var out []string
	if err := expandRanges(name, &out); err != nil {
		re := err.(*rangeError)
		p := pos
		if i := strings.Index(entry, "["+re.rng); p.Col > 0 && i >= 0 {
			p.Col += i
		}
		return nil, 0, errAt(p, hostSubject(entry), ErrBadRange, " %q: %s", re.rng, re.msg)
	}
	return out, port, nil
}

// splitHostPort separates a trailing ":port" from a host entry.
func splitHostPort(s string) (string, int) {
	if m := bracketedHostPort.FindStringSubmatch(s); m != nil && strings.Contains(m[1], ":") {
		if p, err := strconv.Atoi(m[2]); err == nil {
			return m[1], p
		}
	}
	if m := hostPort.FindStringSubmatch(s); m != nil {
		if p, err := strconv.Atoi(m[2]); err == nil {
			return m[1], p
		}
	}
	return s, 0
}

type rangeError struct{ rng, msg string }

// Error formats the range and the problem.
func (e *rangeError) Error() string { return e.rng + ": " + e.msg }

// expandRanges expands the first [begin:end(:step)] of line and recurses on
// the results (Ansible's expand_hostname_range), appending names to out.
func expandRanges(line string, out *[]string) error {
	i := strings.IndexByte(line, '[')
	j := strings.IndexByte(line, ']')
	if j < 0 || j < i {
		return &rangeError{line[i+1:], "missing ]"}
	}
	head, rng, tail := line[:i], line[i+1:j], line[j+1:]
	seq, err := rangeSeq(rng)
	if err != nil {
		return &rangeError{rng, err.Error()}
	}
	if len(*out)+len(seq) > maxRangeHosts {
		return &rangeError{rng, fmt.Sprintf("expands to more than %d hosts", maxRangeHosts)}
	}
	for _, s := range seq {
		name := head + s + tail
		if strings.Contains(name, "[") {
			if err := expandRanges(name, out); err != nil {
				return err
			}
			continue
		}
		*out = append(*out, name)
	}
	return nil
}

// rangeSeq returns the items of one range body "begin:end" or
// "begin:end:step": letters (a:f) or numbers, keeping the zero padding of
// begin (01:10 gives 01 02 ... 10).
func rangeSeq(rng string) ([]string, error) {
	bounds := strings.Split(rng, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return nil, fmt.Errorf("host range must be begin:end or begin:end:step")
	}
	beg, end, step := bounds[0], bounds[1], 1
	if len(bounds) == 3 {
		n, err := strconv.Atoi(bounds[2])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("step %q is not a positive number", bounds[2])
		}
		step = n
	}
	if beg == "" {
		beg = "0"
	}
	if end == "" {
		return nil, fmt.Errorf("host range must specify end value")
	}
	if letterRange(beg, end) {
		return alphaSeq(beg, end, step)
	}
	return numSeq(beg, end, step)
}

func letterRange(beg, end string) bool {
	return len(beg) == 1 && len(end) == 1 &&
		strings.Contains(asciiLetters, beg) && strings.Contains(asciiLetters, end)
}

func alphaSeq(beg, end string, step int) ([]string, error) {
	b, e := strings.Index(asciiLetters, beg), strings.Index(asciiLetters, end)
	if b > e {
		return nil, fmt.Errorf("host range must have begin <= end")
	}
	var out []string
	for i := b; i <= e; i += step {
		out = append(out, asciiLetters[i:i+1])
	}
	return out, nil
}

func numSeq(beg, end string, step int) ([]string, error) {
	width := 0
	if beg[0] == '0' && len(beg) > 1 {
		width = len(beg)
		if width != len(end) {
			return nil, fmt.Errorf("host range must specify equal-length begin and end formats")
		}
	}
	b, err := strconv.Atoi(beg)
	if err != nil {
		return nil, fmt.Errorf("begin %q is not a number or a letter", beg)
	}
	e, err := strconv.Atoi(end)
	if err != nil {
		return nil, fmt.Errorf("end %q is not a number or a letter", end)
	}
	if b > e {
		return nil, fmt.Errorf("host range must have begin <= end")
	}
	if d := e - b; d < 0 || d/step >= maxRangeHosts {
		return nil, fmt.Errorf("expands to more than %d hosts", maxRangeHosts)
	}
	n := (e-b)/step + 1
	out := make([]string, 0, n)
	for k := range n {
		out = append(out, fmt.Sprintf("%0*d", width, b+k*step))
	}
	return out, nil
}
