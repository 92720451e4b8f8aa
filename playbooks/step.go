package playbooks

import (
	"context"
	"maps"
	"path"
	"slices"
	"sync"
)

// runTasks runs tasks with the linear strategy: each task on every active
// host, in parallel, before the next task.
func (p *playRun) runTasks(ctx context.Context, tasks []*Task, hosts []*hostState, in *inherit) {
	for _, t := range tasks {
		if p.halted(ctx) {
			return
		}
		active := p.active(hosts)
		if len(active) == 0 {
			return
		}
		if t.IsBlock() && t.Loop != nil {
			p.runLoopBlock(ctx, t, active, in)
			continue
		}
		if t.IsBlock() {
			p.runBlock(ctx, t, active, in)
			continue
		}
		p.runTask(ctx, t, active, in)
	}
}

// runBlock runs a block, then its rescue section on the hosts that failed,
// then its always section on every host that entered the block.
func (p *playRun) runBlock(ctx context.Context, b *Task, hosts []*hostState, in *inherit) {
	if b.include != "" && !in.handler {
		if hosts = p.enterInclude(b, hosts, in); len(hosts) == 0 {
			return
		}
		bare := *b
		bare.When = nil // evaluated once, at the include
		b = &bare
	}
	if b.dynInclude != nil {
		p.runDynInclude(ctx, b, hosts, in)
		return
	}
	inner := in.child(b)
	blockIn := *inner
	blockIn.rescuable = inner.rescuable || len(b.Rescue) > 0
	p.runTasks(ctx, b.Block, hosts, &blockIn)
	if len(b.Rescue) > 0 {
		var failed []*hostState
		for _, h := range hosts {
			if h.failed && !h.unreachable {
				h.failed, h.rescuable = false, false
				failed = append(failed, h)
			}
		}
		p.runTasks(ctx, b.Rescue, failed, inner)
	}
	if len(b.Always) > 0 && !p.halted(ctx) {
		var targets []*hostState
		wasFailed := map[*hostState]bool{}
		for _, h := range hosts {
			if h.unreachable || h.ended {
				continue
			}
			wasFailed[h] = h.failed
			h.failed = false
			targets = append(targets, h)
		}
		p.runTasks(ctx, b.Always, targets, inner)
		for h, f := range wasFailed {
			h.failed = h.failed || f
		}
	}
}

// enterInclude evaluates an include_tasks/include_role's condition once per
// host, as Ansible does for its dynamic includes, and reports the include's
// own result as Ansible counts it: skipped where the condition is false,
// and for include_tasks "included" (ok) where it holds (include_role has
// no result of its own then). It returns the hosts that include.
func (p *playRun) enterInclude(b *Task, hosts []*hostState, in *inherit) []*hostState {
	r := p.r
	shown := r.started && TagsMatch(append(slices.Clip(in.tags), b.Tags...), r.opts.Tags, r.opts.SkipTags)
	file := b.includeFile
	if b.dynInclude != nil {
		file = b.dynInclude.file
	}
	hv := p.hostvarsSnapshot()
	var out []*hostState
	started := false
	for _, h := range hosts {
		vars, err := p.taskVars(h, b, in, hv)
		ok := false
		if err == nil {
			ok, err = p.conds(append(slices.Clip(in.when), b.When...), vars)
		}
		var o outcome
		switch {
		case err != nil:
			o = templateFailure(b, err)
		case !ok:
			o = skipped("Conditional result was False")
		case b.include == "include_tasks":
			out = append(out, h)
			o = outcome{res: Result{Msg: "included: " + file + " for " + h.host.Name}}
		default:
			out = append(out, h)
			continue
		}
		if !shown && !o.failed {
			continue
		}
		if !started {
			started = true
			r.rep.Report(Event{Kind: EventTaskStart, Play: p.name(), Task: b.DisplayName()})
		}
		p.report(b, h, in, o)
		p.apply(b, h, o, in, true)
	}
	return out
}

// selected applies --tags/--skip-tags and --start-at-task to a task.
func (p *playRun) selected(t *Task, in *inherit) bool {
	r := p.r
	if in.handler {
		return true
	}
	tags := append(append([]string{}, in.tags...), t.Tags...)
	if !TagsMatch(tags, r.opts.Tags, r.opts.SkipTags) {
		return false
	}
	if !r.started {
		ok, _ := path.Match(r.opts.StartAtTask, t.Name)
		r.started = ok || t.Name == r.opts.StartAtTask
	}
	return r.started
}

// runTask runs one (non-block) task on hosts and applies the outcomes.
func (p *playRun) runTask(ctx context.Context, t *Task, hosts []*hostState, in *inherit) {
	if !p.selected(t, in) {
		return
	}
	if t.Module == "meta" {
		p.meta(ctx, t, hosts, in)
		return
	}
	p.r.rep.Report(Event{Kind: EventTaskStart, Play: p.name(), Task: t.DisplayName(), Handler: in.handler})
	if p.free {
		p.refreshDirty(hosts) // group_by on another host marked it
	}
	targets := hosts
	hv := p.hostvarsSnapshot()
	runOnce := p.runOnce(t, in, hosts[0], hv)
	if runOnce || bypassesHostLoop(t.Module) {
		targets = hosts[:1]
	}
	outcomes := make([]outcome, len(targets))
	var throttle chan struct{}
	if n := max(t.Throttle, in.throttle, p.dynInt(t, "throttle", in, hosts[0], hv)); n > 0 {
		throttle = make(chan struct{}, n)
	}
	var wg sync.WaitGroup
	for i, h := range targets {
		wg.Add(1)
		p.r.sem <- struct{}{}
		if throttle != nil {
			throttle <- struct{}{}
		}
		go func() {
			defer func() {
				if throttle != nil {
					<-throttle
				}
				<-p.r.sem
				wg.Done()
			}()
			outcomes[i] = p.execHost(ctx, t, h, in, hv)
			p.report(t, h, in, outcomes[i])
		}()
	}
	p.release(in)
	wg.Wait()
	p.acquire(in)
	failedNow := false
	for i, h := range targets {
		p.apply(t, h, outcomes[i], in, true)
		failedNow = failedNow || outcomes[i].unreachable || outcomes[i].failed && !outcomes[i].ignored
	}
	if runOnce {
		for _, h := range hosts[1:] {
			p.apply(t, h, outcomes[0], in, false)
		}
	}
	if failedNow && p.taskFatal(t, in) {
		p.abort()
	}
	p.refreshDirty(hosts)
	if p.invChanged {
		p.invChanged = false
		if p.free { // the others' modules may be reading their views: they refresh themselves
			for _, h := range p.hosts {
				h.dirty = true
			}
		} else {
			p.refresh(p.hosts...)
		}
	}
	p.checkFailures(hosts, in)
}

// apply records an outcome on a host: counters, failure, register, facts, notify.
func (p *playRun) apply(t *Task, h *hostState, o outcome, in *inherit, count bool) {
	stat := func(fn func(s *Stats)) {
		if count {
			p.r.recap.add(h.host.Name, fn)
		}
	}
	switch {
	case o.unreachable:
		if count && !t.IgnoreUnreachable && !in.ignoreUnreach {
			h.unreachable = true
		}
		stat(func(s *Stats) { s.Unreachable++ })
	case o.failed && !o.ignored:
		h.failed = true
		if in.rescuable {
			h.rescuable = true
			h.setFacts(map[string]any{"ansible_failed_result": o.reg, "ansible_failed_task": map[string]any{"name": t.DisplayName()}})
			p.r.recap.add(h.host.Name, func(s *Stats) { s.Rescued++ })
		} else {
			p.r.recap.add(h.host.Name, func(s *Stats) { s.Failed++ })
		}
	case o.skipped:
		stat(func(s *Stats) { s.Skipped++ })
	default:
		stat(func(s *Stats) {
			s.Ok++
			if o.changed {
				s.Changed++
			}
			if o.failed {
				s.Ignored++
			}
		})
	}
	if t.Register != "" && !o.unreachable {
		h.setFacts(map[string]any{t.Register: o.reg})
	}
	if t.DelegateFacts && o.delegate != "" && o.delegate != h.host.Name {
		d := p.r.hostByName(o.delegate)
		d.setFactsFrom(o)
		p.invChanged = p.invChanged || len(o.facts) > 0 // the delegate's view and hostvars
	} else {
		h.setFactsFrom(o)
	}
	p.applyInventory(t, h, o)
	if o.changed && !o.unreachable && (!o.failed || o.ignored) {
		for _, name := range o.notify {
			for _, hd := range p.topics[name] {
				h.notified[hd] = true
			}
		}
	}
}

// checkFailures stops the play for any_errors_fatal and max_fail_percentage.
func (p *playRun) checkFailures(hosts []*hostState, in *inherit) {
	failed := 0
	for _, h := range p.batch {
		if h.unreachable || h.failed && !h.rescuable {
			failed++
		}
	}
	if failed == 0 {
		return
	}
	stop := p.play.AnyErrorsFatal
	if mfp := p.play.MaxFailPercentage; mfp != nil {
		stop = stop || float64(failed)*100/float64(len(p.batch)) > *mfp
	}
	if stop {
		p.abort()
	}
}

// abort stops the run (any_errors_fatal, max_fail_percentage).
func (p *playRun) abort() {
	if p.r.stop {
		return
	}
	p.r.stop = true
	p.r.recap.Aborted = true
	p.r.rep.Report(Event{Kind: EventNoHostsLeft, Play: p.name()})
}

// taskFatal is any_errors_fatal set on the task or an enclosing block.
func (p *playRun) taskFatal(t *Task, in *inherit) bool {
	if t.AnyErrorsFatal != nil {
		return *t.AnyErrorsFatal
	}
	return in.fatal != nil && *in.fatal
}

// flush runs notified handlers in definition order on the hosts that
// notified them; handlers may notify later (or earlier) handlers. free is
// set in a host's strategy-free goroutine (the handlers then release the
// engine while their modules run, as the tasks do).
func (p *playRun) flush(ctx context.Context, hosts []*hostState, free bool) {
	in := p.rootInherit()
	in.handler, in.free = true, free
	for pass := 0; pass <= len(p.play.Handlers); pass++ {
		ran := false
		for _, hd := range p.play.Handlers {
			if p.halted(ctx) {
				return
			}
			var targets []*hostState
			for _, h := range hosts {
				if h.notified[hd] && (h.active() || p.play.ForceHandlers && h.failed && !h.unreachable) {
					delete(h.notified, hd)
					targets = append(targets, h)
				}
			}
			if len(targets) > 0 {
				ran = true
				p.runTask(ctx, hd, targets, in)
			}
		}
		if !ran {
			return
		}
	}
}

// dynInt evaluates a templated integer keyword with the first host's variables (0 if unset or bad).
func (p *playRun) dynInt(t *Task, key string, in *inherit, first *hostState, hv map[string]any) int {
	src, ok := t.dyn[key]
	if !ok {
		return 0
	}
	vars, err := p.taskVars(first, t, in, hv)
	if err != nil {
		return 0
	}
	v, err := p.r.eng.Render(src, vars)
	if err != nil {
		return 0
	}
	n, err := Args{key: v}.Int(key, 0)
	if err != nil {
		return 0
	}
	return n
}

// runOnce evaluates run_once (templated with the first host's variables).
func (p *playRun) runOnce(t *Task, in *inherit, first *hostState, hv map[string]any) bool {
	src, ok := t.dyn["run_once"]
	if !ok {
		return t.RunOnce || in.runOnce
	}
	vars, err := p.taskVars(first, t, in, hv)
	if err != nil {
		return false
	}
	b, err := p.r.eng.Truth(src, vars)
	return err == nil && b
}

// meta runs flush_handlers, end_play, end_batch, end_host, reset_connection,
// clear_facts, clear_host_errors, noop and refresh_inventory (a no-op: the
// inventory is read once).
func (p *playRun) meta(ctx context.Context, t *Task, hosts []*hostState, in *inherit) {
	action, _ := p.r.argsOf(t)["action"].(string)
	hv := p.hostvarsSnapshot()
	var matched []*hostState
	for _, h := range hosts {
		vars, err := p.taskVars(h, t, in, hv)
		if err == nil {
			var ok bool
			if ok, err = p.conds(append(append([]string{}, in.when...), t.When...), vars); err == nil && ok {
				matched = append(matched, h)
			}
		}
		if err != nil {
			o := failure(err.Error())
			p.r.rep.Report(Event{Kind: EventTaskStart, Play: p.name(), Task: t.DisplayName()})
			p.report(t, h, in, o)
			p.apply(t, h, o, in, true)
		}
	}
	switch action {
	case "flush_handlers":
		p.flush(ctx, hosts, in.free)
	case "end_play":
		p.ended = p.ended || len(matched) > 0
	case "end_host":
		for _, h := range matched {
			h.ended = true
		}
	case "end_batch":
		if len(matched) > 0 {
			for _, h := range p.batch {
				h.ended = true
			}
		}
	case "reset_connection":
		for _, h := range matched {
			p.r.resetConn(h)
		}
	case "clear_facts":
		for _, h := range matched {
			h.facts = map[string]any{}
			h.dirty, h.outside = true, nil
		}
		p.refreshDirty(matched)
	case "clear_host_errors":
		for _, h := range p.hosts {
			h.failed, h.unreachable = false, false
		}
	}
}

func cloneVars(m map[string]any) map[string]any { return maps.Clone(m) }

// runLoopBlock runs an include_tasks with a loop: the items are evaluated
// per host, then the block runs once per item index on the hosts that have
// that item, with the loop variables set for each host.
func (p *playRun) runLoopBlock(ctx context.Context, b *Task, hosts []*hostState, in *inherit) {
	hv := p.hostvarsSnapshot()
	items := map[*hostState][]any{}
	rounds := 0
	bare := *b
	bare.Vars = nil // they may use the loop variable
	for _, h := range hosts {
		vars, err := p.taskVars(h, &bare, in, hv)
		var list []any
		if err == nil {
			list, err = p.loopItems(b, vars)
		}
		if err != nil {
			o := failure(err.Error())
			p.r.rep.Report(Event{Kind: EventTaskStart, Play: p.name(), Task: b.DisplayName()})
			p.report(b, h, in, o)
			p.apply(b, h, o, in, true)
			continue
		}
		items[h] = list
		rounds = max(rounds, len(list))
	}
	loopVar := b.LoopVar
	if loopVar == "" {
		loopVar = "item"
	}
	for i := 0; i < rounds && !p.halted(ctx); i++ {
		perHost := maps.Clone(in.perHost)
		if perHost == nil {
			perHost = map[*hostState]map[string]any{}
		}
		var targets []*hostState
		for _, h := range hosts {
			if i >= len(items[h]) {
				continue
			}
			lv := maps.Clone(in.perHost[h])
			if lv == nil {
				lv = map[string]any{}
			}
			lv[loopVar] = items[h][i]
			if b.IndexVar != "" {
				lv[b.IndexVar] = i
			}
			perHost[h] = lv
			targets = append(targets, h)
		}
		round := *in
		round.perHost = perHost
		p.runBlock(ctx, b, targets, &round)
	}
}
