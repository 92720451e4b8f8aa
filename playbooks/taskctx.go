package playbooks

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"orch/playbooks/template"
)

// TaskContext is what a module sees of one task on one host.
type TaskContext struct {
	// Host is the inventory name of the host the task runs for.
	Host string
	// Delegate is the host whose connection is used, if delegate_to is set.
	Delegate string
	// Args are the module's arguments, templated.
	Args Args
	// Check is set in check mode: modules must not change anything (Change enforces it).
	Check bool
	// Diff asks the module to fill Result.Diff.
	Diff bool
	// Become asks for privilege escalation when running commands.
	Become bool
	// RemoteUser is the task's remote_user keyword (rendered), "" when unset; ansible_user
	// in Vars takes precedence over it, as in Ansible. Modules that open their own
	// connection to the host (synchronize's rsync over ssh) log in with it.
	RemoteUser string
	// Connection is the task's connection keyword (ssh or local), "" when unset.
	Connection string
	// Logger is the engine's logger with host and task attributes.
	Logger *slog.Logger

	ctx     context.Context
	vars    map[string]any
	eng     *template.Engine
	dir     string
	roleDir string    // the task's role directory, if any
	jobs    *jobTable // the run's async jobs
	connect func(ctx context.Context) (Conn, error)
	reset   func()
	changes []string
	modules Registry // the run's modules (a templated action's module is found at run time)
}

// Vars returns a read-only view of the host's variables for this task.
func (t *TaskContext) Vars() VarView { return VarView{m: t.vars} }

// Conn returns the connection to the host (or delegate), opening it on
// first use. The error wraps ErrUnreachable.
func (t *TaskContext) Conn() (Conn, error) { return t.connect(t.ctx) }

// ResetConn closes and forgets the connections to the task's host (or delegate), as
// `meta: reset_connection` does: the next Conn opens a new one (after a reboot, say).
func (t *TaskContext) ResetConn() {
	if t.reset != nil {
		t.reset()
	}
}

// Change is the single gate for side effects: it records description and,
// unless in check mode, calls apply. Every module change goes through it.
func (t *TaskContext) Change(description string, apply func() error) error {
	t.changes = append(t.changes, description)
	if t.Check || apply == nil {
		return nil
	}
	return apply()
}

// ChangeIf is Change for an action that finds out itself whether anything needed doing
// (a push that compares digests on the way): the change is recorded only when apply
// reports it changed something. In check mode apply is not called; the module must then
// decide with a read-only probe and call Change.
func (t *TaskContext) ChangeIf(description string, apply func() (bool, error)) error {
	if t.Check {
		return nil
	}
	changed, err := apply()
	if changed || err != nil {
		t.changes = append(t.changes, description)
	}
	return err
}

// Eval evaluates a bare expression against the host's variables.
func (t *TaskContext) Eval(expr string) (any, error) { return t.eng.Eval(expr, t.vars) }

// Render templates v (strings, maps, lists) with the host's variables.
func (t *TaskContext) Render(v any) (any, error) { return t.eng.Render(v, t.vars) }

// LocalPath resolves a controller-side path relative to the playbook's directory.
func (t *TaskContext) LocalPath(p string) string {
	if filepath.IsAbs(p) || t.dir == "" {
		return p
	}
	return filepath.Join(t.dir, p)
}

// VarView is a read-only view of variables. Values must not be modified.
type VarView struct{ m map[string]any }

// Get returns a variable's value.
func (v VarView) Get(name string) (any, bool) {
	x, ok := v.m[name]
	return x, ok
}

// Names returns the variable names, sorted.
func (v VarView) Names() []string {
	out := make([]string, 0, len(v.m))
	for k := range v.m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Args are a module's arguments with typed accessors; errors name the argument.
type Args map[string]any

func argErr(name, want string, v any) error {
	return fmt.Errorf("%w %q: expected %s, got %T", ErrArgs, name, want, v)
}

// Has reports whether the argument is set (and not null).
func (a Args) Has(name string) bool { return a[name] != nil }

// String returns a string argument, def if absent. Numbers and booleans are converted.
func (a Args) String(name, def string) (string, error) {
	switch v := a[name].(type) {
	case nil:
		return def, nil
	case string:
		return v, nil
	case int, float64, bool:
		return template.String(v), nil
	default:
		return "", argErr(name, "a string", v)
	}
}

// Required returns a string argument that must be set.
func (a Args) Required(name string) (string, error) {
	if !a.Has(name) {
		return "", fmt.Errorf("%w %q: required", ErrArgs, name)
	}
	return a.String(name, "")
}

// Bool returns a boolean argument (yes/no/true/false strings accepted), def if absent.
func (a Args) Bool(name string, def bool) (bool, error) {
	switch v := a[name].(type) {
	case nil:
		return def, nil
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "yes", "true", "on", "1":
			return true, nil
		case "no", "false", "off", "0", "":
			return false, nil
		}
	}
	return false, argErr(name, "a boolean", a[name])
}

// Float returns a number argument (numeric strings accepted), def if absent.
func (a Args) Float(name string, def float64) (float64, error) {
	switch v := a[name].(type) {
	case nil:
		return def, nil
	case int:
		return float64(v), nil
	case float64:
		return v, nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return f, nil
		}
	}
	return 0, argErr(name, "a number", a[name])
}

// Int returns an integer argument, def if absent.
func (a Args) Int(name string, def int) (int, error) {
	f, err := a.Float(name, float64(def))
	if err == nil && f != float64(int(f)) {
		return 0, argErr(name, "an integer", a[name])
	}
	return int(f), err
}

// StringList returns a list of strings; a single string is a one-element list.
func (a Args) StringList(name string) ([]string, error) {
	switch v := a[name].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, argErr(fmt.Sprintf("%s[%d]", name, i), "a string", e)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, argErr(name, "a list of strings", a[name])
}

// Mode returns a file mode given as an octal string ("0644") or a number, ok false if absent.
func (a Args) Mode(name string) (mode fs.FileMode, ok bool, err error) {
	switch v := a[name].(type) {
	case nil:
		return 0, false, nil
	case int:
		return fs.FileMode(v), true, nil
	case string:
		u, err := strconv.ParseUint(strings.TrimPrefix(v, "0o"), 8, 32)
		if err != nil {
			return 0, false, argErr(name, "an octal mode like \"0644\"", v)
		}
		return fs.FileMode(u), true, nil
	}
	return 0, false, argErr(name, "an octal mode", a[name])
}
