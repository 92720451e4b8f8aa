package playbooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"orch/playbooks/template"
)

// runner is one Run of a playbook.
type runner struct {
	pb      *Playbook
	opts    Options
	eng     *template.Engine
	log     *slog.Logger
	modules Registry
	args    map[*Task]map[string]any // static args, free-form already split
	argsMu  sync.RWMutex             // args grows with dynamic includes (free strategy: concurrently)
	rep     *syncReporter
	recap   *Recap
	sem     chan struct{}

	hostsMu sync.Mutex
	hosts   map[string]*hostState
	order   []*hostState // inventory order

	jobs      jobTable            // async jobs (poll: 0)
	groups    map[string][]string // the inventory's groups, with group_by/add_host's
	dynGroups map[string][]string // groups made or grown by group_by/add_host
	added     []string            // hosts added by add_host
	included  map[string][]*Task  // dynamic include_tasks files, read once
	started   bool                // start-at-task found (or not requested)
	stop      bool                // any_errors_fatal, max_fail_percentage: stop the playbook
	// promptWarned: the not-interactive warning of vars_prompt was given.
	promptWarned bool
}

// Run runs the playbook's plays in order and returns the recap. The error
// reports what prevented running (a malformed playbook, an unknown module,
// a bad host pattern, a cancelled context), not failed tasks: those are in
// the recap, and ExitCode turns it into ansible-playbook's exit code.
func Run(ctx context.Context, pb *Playbook, opts Options) (*Recap, error) {
	r, err := newRunner(pb, opts)
	if err != nil {
		return nil, err
	}
	defer r.closeConns()
	for i, play := range pb.Plays {
		if r.stop {
			break
		}
		if err := r.runPlay(ctx, play); err != nil {
			return r.recap, fmt.Errorf("play %d (%s): %w", i+1, play.Name, err)
		}
		if err := ctx.Err(); err != nil {
			return r.recap, err
		}
	}
	r.rep.Report(Event{Kind: EventPlaybookEnd, Recap: r.recap})
	return r.recap, nil
}

func newRunner(pb *Playbook, opts Options) (*runner, error) {
	if opts.Forks <= 0 {
		opts.Forks = DefaultForks
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Select == nil {
		opts.Select = SimpleSelector(opts.Hosts, opts.Groups)
	}
	r := &runner{
		pb: pb, opts: opts, eng: pb.eng, log: opts.Logger,
		modules: Builtins(), rep: &syncReporter{r: opts.Reporter}, recap: newRecap(),
		sem: make(chan struct{}, opts.Forks), hosts: map[string]*hostState{},
		started: opts.StartAtTask == "", groups: cloneGroups(opts.Groups), dynGroups: map[string][]string{},
	}
	if r.eng == nil {
		r.eng = template.New()
	}
	maps.Copy(r.modules, opts.Modules)
	for _, h := range opts.Hosts {
		hs := newHostState(h)
		r.hosts[h.Name] = hs
		r.order = append(r.order, hs)
	}
	args, err := prepare(pb, r.modules, opts.NoFacts)
	if err != nil {
		return nil, err
	}
	r.args = args
	return r, nil
}

// Validate checks a parsed playbook against the built-in modules plus extra:
// every module must exist and free-form arguments must parse; a play that
// gathers facts needs a "setup" module. The error lists every problem.
func Validate(pb *Playbook, extra Registry) error {
	reg := Builtins()
	maps.Copy(reg, extra)
	_, err := prepare(pb, reg, false)
	return err
}

// SyntaxCheck reads a playbook and checks it as Run would before running
// anything: every file it imports, its roles, its templates, and its
// modules against the built-ins plus extra. The error lists every problem
// found (file:line:col each), not only the first.
func SyntaxCheck(path string, extra Registry) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("loading playbook: %w", err)
	}
	pb, perr := parse(path, data)
	verr := Validate(pb, extra)
	if perr == nil || verr == nil {
		return errors.Join(perr, verr)
	}
	return errors.Join(append(unjoin(perr), unjoin(verr)...)...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && !isParseError(err) {
		return j.Unwrap()
	}
	return []error{err}
}

func isParseError(err error) bool {
	_, ok := err.(*ParseError)
	return ok
}

// prepare resolves every task's module and splits free-form arguments, and
// adds each fact-gathering play's "Gathering Facts" task. It reports every
// problem, not only the first.
func prepare(pb *Playbook, reg Registry, noFacts bool) (map[*Task]map[string]any, error) {
	out := map[*Task]map[string]any{}
	var errs []error
	var walk func([]*Task, bool)
	walk = func(tasks []*Task, included bool) {
		for _, t := range tasks {
			if t.IsBlock() {
				for _, l := range [][]*Task{t.Block, t.Rescue, t.Always} {
					walk(l, included || t.include != "")
				}
				continue
			}
			args, err := taskArgs(t, reg)
			if err != nil && included && errors.Is(err, ErrUnknownModule) {
				// Ansible reads include_tasks/include_role files when the include
				// runs: an unknown module there fails the task if it runs, not the
				// playbook (roles' setup-Archlinux.yml with pacman on Debian hosts).
				t.deferred = err
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out[t] = args
		}
	}
	for _, play := range pb.Plays {
		t, err := factsTask(play, reg, noFacts)
		if err != nil {
			errs = append(errs, err)
		}
		play.factsTask = t
		if t != nil {
			out[t] = t.Args
		}
		for _, l := range [][]*Task{play.PreTasks, play.Tasks, play.PostTasks, play.Handlers} {
			walk(l, false)
		}
	}
	return out, (&problems{errs: dedupe(errs)}).err()
}

func dedupe(errs []error) []error {
	seen := map[string]bool{}
	return slices.DeleteFunc(errs, func(e error) bool {
		dup := seen[e.Error()]
		seen[e.Error()] = true
		return dup
	})
}

func taskArgs(t *Task, reg Registry) (map[string]any, error) {
	if t.Module == "meta" {
		return map[string]any{"action": *t.FreeForm}, nil
	}
	mod, ok := reg[t.Module]
	if !ok {
		return nil, &ParseError{Pos: t.ModulePos, Key: t.Module, Err: unknownModule(t.Module, reg)}
	}
	if t.FreeForm == nil {
		return t.Args, nil
	}
	var args map[string]any
	var err error
	if _, ok := mod.(FreeFormer); !ok && isWholeTemplate(*t.FreeForm) {
		// `module: "{{ a_dict | combine(b) }}"`: the arguments are the template's value
		return mergeArgs(map[string]any{argsTemplateKey: *t.FreeForm}, t.Args), nil
	}
	if ff, ok := mod.(FreeFormer); ok {
		args, err = ff.FreeForm(*t.FreeForm)
	} else {
		args, err = ParseKV(*t.FreeForm)
	}
	if err != nil {
		return nil, &ParseError{Pos: t.ModulePos, Key: t.Module, Err: err}
	}
	return mergeArgs(args, t.Args), nil
}

// argsOf returns a task's static arguments.
func (r *runner) argsOf(t *Task) map[string]any {
	r.argsMu.RLock()
	defer r.argsMu.RUnlock()
	return r.args[t]
}

// argsTemplateKey holds a module's arguments given as one template yielding
// a mapping; attempt renders it and merges the other arguments over it.
const argsTemplateKey = "\x00args"

// isWholeTemplate reports whether s is exactly one `{{ expr }}`.
func isWholeTemplate(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "{{") && strings.HasSuffix(s, "}}") && strings.Count(s, "{{") == 1
}

// ErrNoSetup means that a play gathers facts but no "setup" module is registered.
var ErrNoSetup = errors.New(`fact gathering needs a "setup" module and none is registered; set gather_facts: false`)

// factsTask returns the play's "Gathering Facts" task, or nil when it does
// not gather (gather_facts: false, or NoFacts and no explicit true).
func factsTask(play *Play, reg Registry, noFacts bool) (*Task, error) {
	gather := !noFacts
	if play.GatherFacts != nil {
		gather = *play.GatherFacts
	}
	if !gather {
		return nil, nil
	}
	if _, ok := reg["setup"]; !ok {
		why := "gather_facts defaults to true, as in Ansible"
		if play.GatherFacts != nil {
			why = "gather_facts: true"
		}
		return nil, &ParseError{Pos: play.Pos, Key: "gather_facts", Err: fmt.Errorf("play %q (%s): %w", playName(play), why, ErrNoSetup)}
	}
	args := map[string]any{}
	if len(play.GatherSubset) > 0 {
		subset := make([]any, len(play.GatherSubset))
		for i, s := range play.GatherSubset {
			subset[i] = s
		}
		args["gather_subset"] = subset
	}
	if play.GatherTimeout > 0 {
		args["gather_timeout"] = play.GatherTimeout
	}
	return &Task{Name: "Gathering Facts", Module: "setup", Args: args, Tags: []string{"always"}, Pos: play.Pos, ModulePos: play.Pos}, nil
}
