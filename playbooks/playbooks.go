// Package playbooks is orch's playbook engine: Ansible's language (plays,
// tasks, handlers, blocks, loops, `{{ }}` templates) run with the linear
// strategy over hosts the caller provides.
//
// The engine knows nothing of SSH, inventory files or the cluster: the
// caller gives it hosts with their variables, a Connector that opens a Conn
// to a host, a Selector for host patterns and extra Modules. See DESIGN.md.
package playbooks

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
)

// Errors of the package; returned errors wrap them.
var (
	// ErrParse means the playbook is malformed; the error is a *ParseError with a position.
	ErrParse = errors.New("invalid playbook")
	// ErrUnknownModule means a task names a module that is neither built in nor registered.
	ErrUnknownModule = errors.New("unknown module")
	// ErrUnreachable means the engine could not connect to a host, or lost the connection.
	// A module returns an error wrapping it to mark the host UNREACHABLE rather than failed.
	ErrUnreachable = errors.New("host unreachable")
	// ErrNoHosts means a play's host pattern matched no host.
	ErrNoHosts = errors.New("no hosts matched")
	// ErrArgs means a module argument is missing or has the wrong type.
	ErrArgs = errors.New("invalid module argument")
)

// Host is one inventory host as the engine sees it.
type Host struct {
	// Name is the inventory hostname (inventory_hostname).
	Name string
	// Vars are the host's inventory variables, group precedence already applied.
	Vars map[string]any
}

// Conn runs commands and copies files on one host. The caller adapts its
// transport (SSH) to it; tests use a local one. It must be safe for
// concurrent use: delegated tasks of several hosts may share a Conn.
type Conn interface {
	// Run runs cmd through the host's shell, with stdin if not nil and
	// privilege escalation if become. A non-zero exit code is not an error;
	// err reports a transport failure.
	Run(ctx context.Context, cmd string, stdin io.Reader, become bool) (stdout, stderr []byte, exitCode int, err error)
	// Push copies a local file to the host with the given mode, reporting
	// whether the remote file changed.
	Push(ctx context.Context, localPath, remotePath string, mode fs.FileMode) (changed bool, err error)
}

// Connector opens connections to hosts. An error marks the host UNREACHABLE.
type Connector interface {
	Connect(ctx context.Context, h Host) (Conn, error)
}

// Selector resolves a host pattern ("web:&prod", "all", "db[0]") to host
// names; the inventory package provides one. Warnings are reported, not fatal.
type Selector func(pattern string) (hosts []string, warnings []string, err error)

// Module is a task action such as command or copy. Modules route every
// side effect through TaskContext.Change so that --check stays honest.
//
// Optional abilities, found by type assertion: FreeFormer.
type Module interface {
	Run(ctx context.Context, t *TaskContext) (Result, error)
}

// FreeFormer is a Module that accepts a free-form string
// (`command: echo hi`); it turns the string into its arguments. Modules
// without it get `k=v k2="v 2"` parsing.
type FreeFormer interface {
	FreeForm(raw string) (map[string]any, error)
}

// ModuleFunc adapts a function to Module.
type ModuleFunc func(ctx context.Context, t *TaskContext) (Result, error)

// Run calls f.
func (f ModuleFunc) Run(ctx context.Context, t *TaskContext) (Result, error) { return f(ctx, t) }

// Registry maps module names to modules.
type Registry map[string]Module

// Result is what a module reports for one host (or one loop item).
type Result struct {
	// Changed reports that the module changed (or in check mode would change) something.
	Changed bool
	// Failed reports that the task failed on this host.
	Failed bool
	// Skipped reports that the module decided not to act (e.g. creates= exists).
	Skipped bool
	// Msg is a human-readable message shown after the host's status.
	Msg string
	// Diff is a unified diff shown with --diff.
	Diff string
	// Data is what `register` stores besides changed/failed/msg: rc, stdout,
	// stderr for command modules; "ansible_facts" (a map) sets host facts.
	Data map[string]any
	// Changes lists the descriptions given to TaskContext.Change, set by the engine.
	Changes []string
}

// Options configure one Run. Hosts and Connector are required to run tasks;
// everything else has a default.
type Options struct {
	// Hosts are all inventory hosts with their variables, in inventory order.
	Hosts []Host
	// Groups maps group names to host names (the `groups` magic variable).
	Groups map[string][]string
	// Select resolves host patterns; nil uses a simple selector that knows
	// "all", "*", group names, host names and "a:b" / "a,b" unions.
	Select Selector
	// Connector opens connections to hosts when a module first needs one.
	Connector Connector
	// Modules are merged over the built-in modules (same name replaces).
	Modules Registry
	// Check runs in check mode: no changes, only "would change" reports.
	Check bool
	// Diff asks modules to report diffs of what they change.
	Diff bool
	// Forks bounds how many hosts run a task at once; default 64.
	Forks int
	// ExtraVars are -e variables, the highest precedence.
	ExtraVars map[string]any
	// Limit further restricts every play's hosts to this pattern.
	Limit string
	// Tags selects tasks by tag (--tags); empty means all (except "never").
	Tags []string
	// SkipTags skips tasks by tag (--skip-tags).
	SkipTags []string
	// StartAtTask skips tasks until one with this name (glob allowed).
	StartAtTask string
	// NoFacts makes gather_facts default to false (the engine's own tests,
	// callers without a setup module); a play saying gather_facts: true
	// still gathers. Without it, a play gathering facts needs a module named
	// "setup" in Modules (orch registers one), else Run refuses the playbook.
	NoFacts bool
	// Reporter receives progress events; nil reports nothing.
	Reporter Reporter
	// Prompter asks vars_prompt questions; nil when not interactive (each
	// prompted variable then takes its default, or none, as in Ansible).
	Prompter Prompter
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// DefaultForks is the default for Options.Forks.
const DefaultForks = 64
