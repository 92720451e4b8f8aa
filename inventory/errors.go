package inventory

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Every error returned by this package wraps one of them
// (test with errors.Is); most are wrapped in an *Error that carries the
// file:line:col and the host, group or variable concerned.
var (
	// ErrSyntax reports malformed INI or YAML inventory text.
	ErrSyntax = errors.New("syntax error")
	// ErrBadRange reports a host range such as node[1:x] that cannot be expanded.
	ErrBadRange = errors.New("bad range")
	// ErrUndefinedGroup reports a [g:vars] or [p:children] section naming a
	// group that the inventory never declares.
	ErrUndefinedGroup = errors.New("undefined group")
	// ErrCycle reports a loop in group children (a group that is its own ancestor).
	ErrCycle = errors.New("cycle in group children")
	// ErrBadVarsFile reports a group_vars/ or host_vars/ file that cannot be used.
	ErrBadVarsFile = errors.New("bad vars file")
	// ErrBadValue reports a variable whose value does not fit its typed accessor
	// (ansible_port that is not a port, ansible_become that is not a boolean...).
	ErrBadValue = errors.New("invalid value")
	// ErrUnknownHost reports a host name that is not in the inventory.
	ErrUnknownHost = errors.New("unknown host")
	// ErrUnknownGroup reports a group name that is not in the inventory.
	ErrUnknownGroup = errors.New("unknown group")
	// ErrBadPattern reports a host pattern that cannot be evaluated (bad regex,
	// subscript out of range, unreadable @limit file).
	ErrBadPattern = errors.New("invalid host pattern")
)

// Pos is a position in an inventory source. Line and Col are 1-based; zero
// means unknown.
type Pos struct {
	// File is the path of the source as it was given to Load (or the name
	// given to Parse).
	File string
	// Line is the 1-based line number, 0 when unknown.
	Line int
	// Col is the 1-based column (in bytes), 0 when unknown.
	Col int
}

// String formats the position as file:line:col, leaving out unknown parts.
func (p Pos) String() string {
	s := p.File
	if s == "" {
		s = "<input>"
	}
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
		if p.Col > 0 {
			s += ":" + strconv.Itoa(p.Col)
		}
	}
	return s
}

// Error is a problem found at a position in an inventory source, about a
// subject such as `host "web1"`, `group "db"` or `pattern "web[9]"`.
type Error struct {
	// Pos is where the problem is; the zero Pos when no source is involved
	// (host patterns).
	Pos Pos
	// Subject names what the problem is about, e.g. `host "web1"`; may be empty.
	Subject string
	// Err is the cause; it wraps one of the package's sentinel errors.
	Err error
}

// Error formats as "file:line:col: subject: cause".
func (e *Error) Error() string {
	s := ""
	if e.Pos != (Pos{}) {
		s = e.Pos.String() + ": "
	}
	if e.Subject != "" {
		s += e.Subject + ": "
	}
	return s + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// errAt builds an *Error at pos about subject. The cause is the sentinel's
// text followed directly by the formatted detail, so format usually starts
// with " " or ": ".
func errAt(pos Pos, subject string, sentinel error, format string, args ...any) error {
	err := fmt.Errorf("%w"+format, append([]any{sentinel}, args...)...)
	return &Error{Pos: pos, Subject: subject, Err: err}
}

func hostSubject(name string) string  { return fmt.Sprintf("host %q", name) }
func groupSubject(name string) string { return fmt.Sprintf("group %q", name) }
