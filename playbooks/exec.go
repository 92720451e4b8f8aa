package playbooks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"orch/playbooks/template"
)

// outcome is the result of a task on one host, applied after the step.
type outcome struct {
	res         Result
	reg         map[string]any // what register stores
	facts       map[string]any // ansible_facts from the module(s)
	hostFacts   bool           // facts are a module's host facts (not set_fact's/include_vars' variables)
	lazyFacts   bool           // facts are include_vars' variables: templated when used, as in Ansible
	notify      []string
	delegate    string
	changed     bool
	failed      bool
	ignored     bool
	skipped     bool
	unreachable bool
	// ignoredBySettings is a templated ignore_errors that held.
	ignoredBySettings bool
}

func (o outcome) status() Status {
	switch {
	case o.unreachable:
		return StatusUnreachable
	case o.failed:
		return StatusFailed
	case o.skipped:
		return StatusSkipped
	case o.changed:
		return StatusChanged
	}
	return StatusOK
}

// templateFailure is a failure to template a task: the message names the
// task and where it is written (the variable is named by the engine).
func templateFailure(t *Task, err error) outcome {
	return failure(fmt.Sprintf("%s: task %q: %v", t.Pos, t.DisplayName(), err))
}

func failure(msg string) outcome {
	res := Result{Failed: true, Msg: msg}
	return outcome{res: res, reg: registerValue(res), failed: true}
}

func skipped(msg string) outcome {
	res := Result{Skipped: true, Msg: msg}
	return outcome{res: res, reg: registerValue(res), skipped: true}
}

// execHost runs a task on one host: conditions, loop, module, retries.
func (p *playRun) execHost(ctx context.Context, t *Task, h *hostState, in *inherit, hv map[string]any) outcome {
	vars, err := p.taskVars(h, t, in, hv)
	if err != nil {
		return p.finish(t, in, templateFailure(t, err))
	}
	conds := append(append([]string{}, in.when...), t.When...)
	if t.Loop == nil {
		ok, err := p.conds(conds, vars)
		if err != nil {
			return p.finish(t, in, templateFailure(t, err))
		}
		if !ok {
			return skipped("Conditional result was False")
		}
		return p.finish(t, in, p.execOnce(ctx, t, h, in, vars))
	}
	return p.finish(t, in, p.execLoop(ctx, t, h, in, vars, conds))
}

// finish applies ignore_errors and notify to an outcome.
func (p *playRun) finish(t *Task, in *inherit, o outcome) outcome {
	o.ignored = o.failed && !o.unreachable && (t.IgnoreErrors || in.ignoreErrors || o.ignoredBySettings)
	o.notify = t.Notify
	return o
}

func (p *playRun) execLoop(ctx context.Context, t *Task, h *hostState, in *inherit, vars map[string]any, conds []string) outcome {
	items, err := p.loopItems(t, vars)
	if err != nil {
		return failure(err.Error())
	}
	if len(items) == 0 {
		return skipped("No items in the list")
	}
	loopVar := t.LoopVar
	if loopVar == "" {
		loopVar = "item"
	}
	agg := outcome{skipped: true, facts: map[string]any{}}
	results := make([]any, 0, len(items))
	for i, item := range items {
		iv := cloneVars(vars)
		iv[loopVar] = item
		iv["ansible_loop_var"] = loopVar
		if t.IndexVar != "" {
			iv[t.IndexVar] = i
		}
		o := p.loopItem(ctx, t, h, in, iv, conds)
		reg := maps.Clone(o.reg)
		reg[loopVar], reg["ansible_loop_var"] = item, loopVar
		results = append(results, reg)
		agg.merge(o)
		agg.ignoredBySettings = agg.ignoredBySettings || o.ignoredBySettings
		maps.Copy(vars, o.facts) // later items see facts set by earlier ones, as in Ansible
		p.reportItem(t, h, in, o, p.itemLabel(t, iv, item))
		if o.unreachable || ctx.Err() != nil {
			break
		}
	}
	agg.res.Data = map[string]any{"results": results}
	if agg.failed {
		agg.res.Msg = "One or more items failed"
	}
	agg.res.Changed, agg.res.Failed, agg.res.Skipped = agg.changed, agg.failed, agg.skipped
	agg.reg = registerValue(agg.res)
	return agg
}

func (p *playRun) loopItem(ctx context.Context, t *Task, h *hostState, in *inherit, iv map[string]any, conds []string) outcome {
	ok, err := p.conds(conds, iv)
	if err != nil {
		return failure(err.Error())
	}
	if !ok {
		return skipped("Conditional result was False")
	}
	return p.execOnce(ctx, t, h, in, iv)
}

func (o *outcome) merge(item outcome) {
	o.changed = o.changed || item.changed
	o.failed = o.failed || item.failed
	o.unreachable = o.unreachable || item.unreachable
	o.skipped = o.skipped && item.skipped
	maps.Copy(o.facts, item.facts)
	if item.delegate != "" {
		o.delegate = item.delegate
	}
}

func (p *playRun) itemLabel(t *Task, vars map[string]any, item any) string {
	if t.LoopLabel == "" {
		return template.String(item)
	}
	v, err := p.r.eng.RenderString(t.LoopLabel, vars)
	if err != nil {
		return template.String(item)
	}
	return template.String(v)
}

// loopItems evaluates loop/with_items to a list.
func (p *playRun) loopItems(t *Task, vars map[string]any) ([]any, error) {
	v, err := p.r.eng.Render(t.Loop, vars)
	if err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	if t.LoopWith != "" {
		return p.lookupItems(t, v, vars)
	}
	if s, ok := v.(string); ok && t.LoopFlatten {
		v = []any{s}
	}
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("loop: expected a list, got %T", v)
	}
	if !t.LoopFlatten {
		return items, nil
	}
	var flat []any
	for _, it := range items {
		if l, ok := it.([]any); ok {
			flat = append(flat, l...)
		} else {
			flat = append(flat, it)
		}
	}
	return flat, nil
}

// lookupItems runs a with_X loop's lookup on its (templated) terms;
// first_found looks in templates/, vars/ or files/ after the task's module,
// as Ansible does.
func (p *playRun) lookupItems(t *Task, v any, vars map[string]any) ([]any, error) {
	terms, ok := v.([]any)
	if !ok {
		terms = []any{v}
	}
	sub := "files"
	switch t.Module {
	case "template":
		sub = "templates"
	case "include_vars":
		sub = "vars"
	}
	items, err := p.r.eng.Query(t.LoopWith, terms, map[string]any{"_subdir": sub}, vars)
	if err != nil {
		return nil, fmt.Errorf("with_%s: %w", t.LoopWith, err)
	}
	return items, nil
}

// conds evaluates conditions, all of which must hold.
func (p *playRun) conds(conds []string, vars map[string]any) (bool, error) {
	for _, c := range conds {
		ok, err := p.r.eng.Truth(c, vars)
		if err != nil {
			return false, fmt.Errorf("condition %q: %w", c, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// execOnce runs the module once (or until `until` holds) with vars.
func (p *playRun) execOnce(ctx context.Context, t *Task, h *hostState, in *inherit, vars map[string]any) outcome {
	delegate, err := p.delegate(t, in, vars)
	if err != nil {
		return failure(err.Error())
	}
	retries, delay, err := p.retryPolicy(t, vars)
	if err != nil {
		return failure(err.Error())
	}
	var o outcome
	for attempt := 1; ; attempt++ {
		o = p.attempt(ctx, t, h, in, vars, delegate)
		if t.Until == "" || o.unreachable || o.skipped || p.r.opts.Check && len(o.res.Changes) > 0 {
			return o // skipped, or in check mode a change only described: no result to test
		}
		o.reg["attempts"] = attempt
		if t.Register != "" {
			vars[t.Register] = o.reg
		}
		done, err := p.r.eng.Truth(t.Until, vars)
		if err != nil {
			return failure(fmt.Sprintf("until %q: %v", t.Until, err))
		}
		if done {
			return o
		}
		if attempt > retries {
			o.failed, o.res.Failed, o.reg["failed"] = true, true, true
			o.res.Msg = fmt.Sprintf("until condition not met after %d attempts: %s", attempt, o.res.Msg)
			return o
		}
		if err := sleep(ctx, delay); err != nil {
			return failure(err.Error())
		}
	}
}

func (p *playRun) retryPolicy(t *Task, vars map[string]any) (int, time.Duration, error) {
	if t.Until == "" {
		return 0, 0, nil
	}
	args := Args{"retries": t.Retries, "delay": t.Delay}
	rendered, err := p.r.eng.Render(map[string]any(args), vars)
	if err != nil {
		return 0, 0, err
	}
	args = rendered.(map[string]any)
	retries, err := args.Int("retries", 3)
	if err != nil {
		return 0, 0, err
	}
	delay, err := args.Float("delay", 5)
	return retries, time.Duration(delay * float64(time.Second)), err
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (p *playRun) delegate(t *Task, in *inherit, vars map[string]any) (string, error) {
	d := t.DelegateTo
	if d == "" {
		d = in.delegateTo
	}
	if d == "" {
		return "", nil
	}
	v, err := p.r.eng.RenderString(d, vars)
	if err != nil {
		return "", fmt.Errorf("delegate_to: %w", err)
	}
	return template.String(v), nil
}

// attempt runs the module once and applies changed_when/failed_when.
func (p *playRun) attempt(ctx context.Context, t *Task, h *hostState, in *inherit, vars map[string]any, delegate string) outcome {
	if t.deferred != nil {
		return failure(t.deferred.Error())
	}
	s, err := p.settings(t, in, vars)
	if err != nil {
		return templateFailure(t, err)
	}
	rendered, err := p.r.eng.Render(withDefaults(p.r.argsOf(t), t.Module, append(slices.Clip(in.defaults), t.ModuleDefaults)), vars)
	if err != nil {
		return templateFailure(t, fmt.Errorf("%s: %w", t.Module, err))
	}
	args, _ := rendered.(map[string]any)
	if whole, ok := args[argsTemplateKey]; ok {
		m, ok := whole.(map[string]any)
		if !ok {
			return templateFailure(t, fmt.Errorf("%s: the arguments template gave %T, not a mapping", t.Module, whole))
		}
		delete(args, argsTemplateKey)
		args = mergeArgs(m, args)
	}
	dropOmitted(args)
	parent, limit := ctx, p.timeout(t, in, vars)
	if limit > 0 {
		tctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		ctx = tctx
	}
	tc := p.taskContext(ctx, t, h, s, vars, delegate, args)
	if t.Async != nil {
		return p.async(ctx, t, tc, vars, delegate)
	}
	tc.Logger.Debug("running module", "module", t.Module, "delegate", delegate)
	res, err := runModule(ctx, p.r.modules[t.Module], tc)
	if limit > 0 && ctx.Err() != nil && parent.Err() == nil {
		res, err = Result{}, fmt.Errorf("the task did not finish within its timeout (%s) and was stopped", limit)
	}
	if err != nil && !t.NoLog && !in.noLog {
		tc.Logger.Debug("module error", "module", t.Module, "err", err)
	}
	o := p.moduleOutcome(t, tc, res, err, vars, delegate)
	o.ignoredBySettings = s.ignoreErrors
	return o
}

// timeout is the task's timeout keyword (templated or not), 0 if none.
func (p *playRun) timeout(t *Task, in *inherit, vars map[string]any) time.Duration {
	n := t.Timeout
	if n == 0 {
		n = in.timeout
	}
	if src, ok := t.dyn["timeout"]; ok {
		v, err := p.r.eng.Render(src, vars)
		if err == nil {
			n, _ = Args{"t": v}.Int("t", 0)
		}
	}
	return time.Duration(n) * time.Second
}

// variableModules return variables as ansible_facts: they are not gathered facts, so
// they do not appear under ansible_facts (as in Ansible, where set_fact without cacheable
// and include_vars are not in the fact cache).
var variableModules = map[string]bool{"set_fact": true, "include_vars": true}

// moduleOutcome turns a module's result into an outcome and applies
// changed_when/failed_when.
func (p *playRun) moduleOutcome(t *Task, tc *TaskContext, res Result, err error, vars map[string]any, delegate string) outcome {
	o := outcome{delegate: delegate}
	if err != nil {
		if errors.Is(err, ErrUnreachable) {
			res.Failed, res.Msg = true, err.Error()
			o.unreachable = true
		} else if !res.Failed || res.Msg == "" {
			res.Failed, res.Msg = true, err.Error()
		}
	}
	res.Changes = tc.changes
	if len(tc.changes) > 0 && err == nil {
		res.Changed = true
		if tc.Check && res.Msg == "" {
			res.Msg = "would change: " + strings.Join(tc.changes, "; ")
		}
	}
	o.res, o.reg = res, registerValue(res)
	if facts, ok := res.Data["ansible_facts"].(map[string]any); ok {
		o.facts = facts
		o.hostFacts = !variableModules[t.Module]
		o.lazyFacts = t.Module == "include_vars"
	}
	if !o.unreachable && !o.res.Skipped {
		p.overrides(t, vars, &o, tc.Check && len(tc.changes) > 0)
	}
	o.changed, o.failed, o.skipped = o.res.Changed, o.res.Failed, o.res.Skipped
	return o
}

// overrides applies changed_when and failed_when to an outcome. described
// means check mode recorded a change without making it (a command did not
// run): a condition that cannot be evaluated on that result (no rc) is
// left out rather than failing the task, as Ansible skips such tasks.
func (p *playRun) overrides(t *Task, vars map[string]any, o *outcome, described bool) {
	if len(t.ChangedWhen) == 0 && len(t.FailedWhen) == 0 {
		return
	}
	if t.Register != "" {
		vars[t.Register] = o.reg
	}
	if len(t.ChangedWhen) > 0 {
		changed, err := p.conds(t.ChangedWhen, vars)
		switch {
		case err != nil && described:
		case err != nil:
			o.res.Failed, o.res.Msg = true, "changed_when: "+err.Error()
			o.res.Changed = changed
		default:
			o.res.Changed = changed
		}
	}
	if len(t.FailedWhen) > 0 {
		failed, err := p.conds(t.FailedWhen, vars)
		if err != nil && described {
			failed = o.res.Failed
		} else if err != nil {
			failed, o.res.Msg = true, "failed_when: "+err.Error()
		} else if failed && o.res.Msg == "" {
			o.res.Msg = "failed_when condition was true"
		}
		o.res.Failed = failed
	}
	o.reg["changed"], o.reg["failed"] = o.res.Changed, o.res.Failed
}

func runModule(ctx context.Context, m Module, tc *TaskContext) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("module panicked: %v", r)
		}
	}()
	return m.Run(ctx, tc)
}

func (p *playRun) taskContext(ctx context.Context, t *Task, h *hostState, s settings, vars map[string]any, delegate string, args map[string]any) *TaskContext {
	r := p.r
	target := h
	if delegate != "" && delegate != h.host.Name {
		target = r.hostByName(delegate)
	}
	tc := &TaskContext{
		Host: h.host.Name, Delegate: delegate, Args: args,
		Check: s.check, Diff: s.diff, Become: s.become, RemoteUser: s.conn.RemoteUser, Connection: s.conn.Connection,
		Logger: r.log.With("host", h.host.Name, "task", t.DisplayName()),
		ctx:    ctx, vars: vars, eng: r.eng, dir: r.pb.Dir, jobs: &r.jobs, modules: r.modules,
		connect: func(ctx context.Context) (Conn, error) {
			c, err := r.connect(ctx, target, s.conn)
			if err != nil {
				return nil, err
			}
			return wrapConn(c, s), nil
		},
		reset: func() { r.resetConn(target) },
	}
	if t.role != nil {
		tc.roleDir = t.role.role.Dir
	}
	return tc
}

// registerValue is what `register` stores: the module's data plus status.
func registerValue(res Result) map[string]any {
	reg := make(map[string]any, len(res.Data)+4)
	maps.Copy(reg, res.Data)
	reg["changed"] = res.Changed
	reg["failed"] = res.Failed
	if res.Skipped {
		reg["skipped"] = true
	}
	if res.Msg != "" {
		reg["msg"] = res.Msg
	}
	if res.Diff != "" {
		reg["diff"] = res.Diff
	}
	return reg
}

const noLogMsg = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"

func (p *playRun) censor(t *Task, in *inherit, res Result) Result {
	if !t.NoLog && !in.noLog {
		return res
	}
	return Result{Changed: res.Changed, Failed: res.Failed, Skipped: res.Skipped, Msg: noLogMsg}
}

func (p *playRun) report(t *Task, h *hostState, in *inherit, o outcome) {
	p.r.rep.Report(Event{
		Kind: EventHostResult, Play: p.name(), Task: t.DisplayName(), Handler: in.handler,
		Host: h.host.Name, Delegate: o.delegate, Status: o.status(), Ignored: o.ignored,
		Result: p.censor(t, in, o.res),
	})
}

func (p *playRun) reportItem(t *Task, h *hostState, in *inherit, o outcome, label string) {
	if t.NoLog || in.noLog {
		label = "None"
	}
	p.r.rep.Report(Event{
		Kind: EventItemResult, Play: p.name(), Task: t.DisplayName(), Handler: in.handler,
		Host: h.host.Name, Delegate: o.delegate, Item: label, Status: o.status(),
		Ignored: o.failed && (t.IgnoreErrors || in.ignoreErrors), Result: p.censor(t, in, o.res),
	})
}
