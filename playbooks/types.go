package playbooks

import (
	"fmt"

	"orch/playbooks/template"
)

// Pos is a position in a playbook file.
type Pos struct {
	File      string
	Line, Col int
}

// String formats the position as file:line:col.
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// ParseError is a malformed-playbook error with its position and the key concerned.
type ParseError struct {
	// Pos is where the offending node starts.
	Pos Pos
	// Key is the YAML key concerned, if any.
	Key string
	// Err says what is wrong.
	Err error
}

// Error formats as `file:line:col: key "k": message`.
func (e *ParseError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("%s: key %q: %v", e.Pos, e.Key, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Pos, e.Err)
}

// Unwrap returns ErrParse and the cause.
func (e *ParseError) Unwrap() []error { return []error{ErrParse, e.Err} }

// Playbook is a parsed playbook: an ordered list of plays.
type Playbook struct {
	// Path is the name the playbook was loaded or parsed with.
	Path string
	// Dir is the directory relative paths (vars_files, copy src) resolve against.
	Dir string
	// Plays in order.
	Plays []*Play

	eng *template.Engine
}

// Engine returns the playbook's template engine (its compiled-expression cache).
func (pb *Playbook) Engine() *template.Engine { return pb.eng }

// Play is one play of a playbook.
type Play struct {
	// Name of the play (PLAY [name]).
	Name string
	// Hosts is the host pattern, resolved with Options.Select.
	Hosts string
	// Serial splits the hosts into batches: numbers or "N%" strings, the last repeating.
	Serial []any
	// MaxFailPercentage aborts the play when more than this percentage of a batch failed.
	MaxFailPercentage *float64
	// AnyErrorsFatal aborts the play for all hosts when one host fails.
	AnyErrorsFatal bool
	// Become is the play's default privilege escalation.
	Become bool
	// Conn are the play's connection keywords (remote_user, become_user,
	// become_method, connection), inherited by its tasks.
	Conn ConnKeywords
	// Environment is the play's environment for commands (a mapping or a template).
	Environment any
	// Strategy is "linear" (default) or "free".
	Strategy string
	// Order is the host order: inventory (default), reverse_inventory,
	// sorted, reverse_sorted or shuffle.
	Order string
	// ModuleDefaults are default arguments per module (or group/NAME).
	ModuleDefaults map[string]map[string]any
	// CheckMode and Diff force check mode / diff for the play's tasks when set.
	CheckMode, Diff *bool
	// Prompts are the play's vars_prompt entries, in order.
	Prompts []VarPrompt
	// VarsPrompt are their values: the defaults after parsing (what --syntax-check and
	// --list-* see), the answers (or defaults) once the play runs.
	VarsPrompt map[string]any
	// ForceHandlers runs notified handlers on hosts that failed too.
	ForceHandlers bool
	// Vars are the play's variables.
	Vars map[string]any
	// VarsFiles are YAML files of variables, relative to the playbook.
	VarsFiles []string
	// PreTasks, Tasks and PostTasks run in that order, handlers flushed after each.
	PreTasks, Tasks, PostTasks []*Task
	// Handlers run at flush time when notified.
	Handlers []*Task
	// Tags apply to every task of the play.
	Tags []string
	// GatherFacts is the play's gather_facts; nil means true, as in Ansible
	// (unless Options.NoFacts).
	GatherFacts *bool
	// GatherSubset and GatherTimeout are passed to the setup module.
	GatherSubset  []string
	GatherTimeout int
	// Pos is where the play starts.
	Pos Pos
	// roleDefaults and roleVars are the merged defaults and vars of the
	// play's public roles (roles:, import_role, include_role public: true).
	roleDefaults, roleVars map[string]any
	// roleShared are the names that several public roles define (in their
	// defaults or their vars): a role task re-applies only these of its own.
	roleShared map[string]bool
	// dyn are templated keyword values (serial, any_errors_fatal, become,
	// gather_facts, check_mode, diff), evaluated when the play starts.
	dyn map[string]string
	// keywords are the play's task keywords (ignore_errors, no_log,
	// run_once, ignore_unreachable, throttle, timeout) as a block's.
	keywords Task
	// factsTask is the synthetic "Gathering Facts" task (set by prepare).
	factsTask *Task
}

// Task is a task, a handler or a block.
type Task struct {
	// Name shown in TASK [name]; defaults to the module name.
	Name string
	// Module is the action's name ("" for a block, "meta" for meta tasks).
	Module string
	// Args are the module's arguments (from `module: {…}` and `args:`).
	Args map[string]any
	// FreeForm is the module's free-form string (`command: echo hi`), if any.
	FreeForm *string
	// When are conditions, all of which must hold (bare expressions).
	When []string
	// Register names the variable that stores the result.
	Register string
	// Loop is the loop's list, or a template string yielding one.
	Loop any
	// LoopFlatten is set for with_items, which flattens one level.
	LoopFlatten bool
	// LoopWith names the lookup of a with_X loop (with_dict: "dict"); Loop
	// is then its terms.
	LoopWith string
	// LoopVar names the loop variable (default "item").
	LoopVar string
	// IndexVar names a variable holding the loop index, if set.
	IndexVar string
	// LoopLabel is a template shown instead of the item.
	LoopLabel string
	// Until retries the task until this expression holds.
	Until string
	// Retries is how many times Until retries (default 3).
	Retries any
	// Delay is seconds between retries (default 5).
	Delay any
	// RunOnce runs the task on the first host of the batch only.
	RunOnce bool
	// DelegateTo runs the task through another host's connection.
	DelegateTo string
	// IgnoreErrors keeps the host going when the task fails.
	IgnoreErrors bool
	// ChangedWhen overrides the changed status (expressions, all must hold).
	ChangedWhen []string
	// FailedWhen overrides the failed status (expressions, any may hold).
	FailedWhen []string
	// Notify names handlers (or listen topics) to notify on change.
	Notify []string
	// Listen are extra topics a handler answers to.
	Listen []string
	// Block, Rescue and Always make the task a block.
	Block, Rescue, Always []*Task
	// Tags of the task.
	Tags []string
	// Become overrides the play's privilege escalation when set.
	Become *bool
	// Conn are the task's connection keywords (remote_user, become_user, …).
	Conn ConnKeywords
	// Environment sets environment variables for the task's commands.
	Environment any
	// Throttle bounds how many hosts run the task at once (0: no bound).
	Throttle int
	// CheckMode and Diff override the run's check mode / diff when set.
	CheckMode, Diff *bool
	// Async is the task's time limit in seconds (async:); Poll how often to
	// check (poll:, default 10; 0 starts the job and goes on).
	Async, Poll any
	// ModuleDefaults are default module arguments for the tasks of a block.
	ModuleDefaults map[string]map[string]any
	// AnyErrorsFatal (task or block) stops the play when this task fails on a host.
	AnyErrorsFatal *bool
	// IgnoreUnreachable keeps a host that this task cannot reach in the play.
	IgnoreUnreachable bool
	// DelegateFacts gives the facts a delegated task sets to the delegate.
	DelegateFacts bool
	// Timeout bounds one run of the module, in seconds (0: none).
	Timeout int
	// NoLog hides arguments and results in output.
	NoLog bool
	// Vars are task (or block) variables.
	Vars map[string]any
	// Pos is where the task starts; ModulePos where its module key is.
	Pos, ModulePos Pos

	// role is the role the task was read from, nil outside roles.
	role *roleUse
	// include is "include_tasks" or "include_role" for a block made by one
	// (Ansible's dynamic includes: a result of their own, `when` evaluated
	// once at the include), "" otherwise (imports, the old static include).
	include string
	// deferred is the error of a task inside an include whose module is
	// unknown: the task fails with it if it runs (Ansible loads included
	// files only then).
	deferred error
	// includeFile is the file an include_tasks block was read from.
	includeFile string
	// dynInclude is an include_tasks whose file name is templated: read
	// when it runs (see dyninclude.go).
	dynInclude *dynInclude
	// dyn are templated keyword values (ignore_errors, become, run_once,
	// check_mode, diff), evaluated per host when the task runs.
	dyn map[string]string
}

// ConnKeywords are the connection keywords of a play, block or task; empty
// fields inherit.
type ConnKeywords struct {
	// RemoteUser is remote_user: the login user when ansible_user is not set.
	RemoteUser string
	// BecomeUser is become_user (default root).
	BecomeUser string
	// BecomeMethod is become_method: sudo (default) or su.
	BecomeMethod string
	// Connection is the connection keyword: ssh (default) or local.
	Connection string
}

// over returns k with c's set fields replacing its own.
func (k ConnKeywords) over(c ConnKeywords) ConnKeywords {
	for _, f := range []struct {
		dst *string
		src string
	}{
		{&k.RemoteUser, c.RemoteUser}, {&k.BecomeUser, c.BecomeUser},
		{&k.BecomeMethod, c.BecomeMethod}, {&k.Connection, c.Connection},
	} {
		if f.src != "" {
			*f.dst = f.src
		}
	}
	return k
}

// IsBlock reports whether the task is a block.
func (t *Task) IsBlock() bool { return t.Block != nil }

// DisplayName is the name shown in output: the name, else the module.
func (t *Task) DisplayName() string {
	if t.Name != "" {
		return t.Name
	}
	if t.IsBlock() {
		return "block"
	}
	return t.Module
}
