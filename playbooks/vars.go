package playbooks

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"orch/playbooks/template"
)

// Variable precedence, low to high: inventory < play vars < vars_files <
// block/task vars < set_fact/register < extra vars; magic variables and the
// loop variable on top. Templated values of every layer but facts are
// resolved when the host's view is built.

// refresh rebuilds the views of hosts for the current play.
func (p *playRun) refresh(hosts ...*hostState) {
	if len(hosts) == 0 {
		return
	}
	m := p.magic()
	for _, h := range hosts {
		p.refreshOne(h, m)
	}
}

func (p *playRun) refreshOne(h *hostState, m magic) {
	r := p.r
	play := p.play
	layers := []map[string]any{play.roleDefaults, h.host.Vars, play.Vars, play.VarsPrompt, p.files, play.roleVars, h.facts, r.opts.ExtraVars}
	view := template.Vars(layers...)
	p.addMagic(h, view, m)
	pending := []string{}
	for name, v := range view {
		if _, isFact := h.facts[name]; isFact && !h.lazy[name] {
			if _, isExtra := r.opts.ExtraVars[name]; !isExtra {
				continue
			}
		}
		if template.NeedsRender(v) {
			pending = append(pending, name)
		}
	}
	p.resolve(view, pending)
	h.view, h.dirty, p.hostvars = view, false, nil
}

// resolve renders templated variables in passes, so that variables may
// refer to each other in any order. What still fails becomes Undefined,
// carrying the reason, and fails when used.
func (p *playRun) resolve(view map[string]any, pending []string) {
	if len(pending) == 0 {
		return
	}
	slices.Sort(pending)
	raw := make(map[string]any, len(pending))
	for _, name := range pending {
		raw[name] = view[name]
		view[name] = template.Undefined{Name: name}
	}
	errs := map[string]error{}
	for progress := true; progress && len(pending) > 0; {
		progress = false
		pending = slices.DeleteFunc(pending, func(name string) bool {
			v, err := p.r.eng.Render(raw[name], view)
			if err != nil {
				errs[name] = err
				return false
			}
			view[name], progress = v, true
			return true
		})
	}
	for _, name := range pending {
		view[name] = template.Undefined{Name: fmt.Sprintf("%s (%v)", name, errs[name])}
	}
}

// magic holds the magic variables shared by the hosts of a batch.
type magic struct {
	batch, playHosts, all []any
}

func (p *playRun) magic() magic {
	if p.groups == nil {
		p.groups = p.groupsVar()
	}
	return magic{batch: hostNames(p.active(p.batch)), playHosts: hostNames(p.active(p.hosts)), all: hostNames(p.hosts)}
}

func (p *playRun) addMagic(h *hostState, view map[string]any, m magic) {
	r := p.r
	name := h.host.Name
	short, _, _ := strings.Cut(name, ".")
	view["inventory_hostname"] = name
	view["inventory_hostname_short"] = short
	view["groups"] = p.groups
	view["group_names"] = groupNames(r.groups, name)
	view["play_hosts"] = m.batch
	view["ansible_play_batch"] = m.batch
	view["ansible_play_hosts"] = m.playHosts
	view["ansible_play_hosts_all"] = m.all
	view["ansible_check_mode"] = r.opts.Check
	view["ansible_diff_mode"] = r.opts.Diff
	view["playbook_dir"] = r.pb.Dir
	view["omit"] = omitToken
	view["ansible_version"] = ansibleVersion
}

// ansibleVersion is the ansible_version magic variable: the Ansible release
// whose playbook language orch follows (roles test it: `ansible_version.full
// is version('2.12', '>=')`).
var ansibleVersion = map[string]any{"full": "2.18.0", "major": 2, "minor": 18, "revision": 0, "string": "2.18.0"}

// omitToken is the value of `omit`: a module argument templated to it is dropped.
const omitToken = "__omit_place_holder__orch__"

// dropOmitted removes arguments whose value is the omit token.
func dropOmitted(args map[string]any) {
	for k, v := range args {
		if s, ok := v.(string); ok && s == omitToken {
			delete(args, k)
		}
	}
}

func (p *playRun) groupsVar() map[string]any {
	out := make(map[string]any, len(p.r.groups)+1)
	all := make([]any, 0, len(p.r.order))
	for _, h := range p.r.order {
		all = append(all, h.host.Name)
	}
	for _, name := range p.r.added {
		all = append(all, name)
	}
	out["all"] = all
	for g, members := range p.r.groups {
		l := make([]any, len(members))
		for i, m := range members {
			l[i] = m
		}
		out[g] = l
	}
	return out
}

func groupNames(groups map[string][]string, host string) []any {
	var names []string
	for g, members := range groups {
		if g != "all" && slices.Contains(members, host) {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = n
	}
	return out
}

func (p *playRun) active(hosts []*hostState) []*hostState {
	out := make([]*hostState, 0, len(hosts))
	for _, h := range hosts {
		if h.active() {
			out = append(out, h)
		}
	}
	return out
}

func hostNames(hosts []*hostState) []any {
	out := make([]any, len(hosts))
	for i, h := range hosts {
		out[i] = h.host.Name
	}
	return out
}

// hostvarsSnapshot maps every known host to its current variables. Views
// are replaced, never modified, so the snapshot is safe to share.
func (p *playRun) hostvarsSnapshot() map[string]any {
	if p.hostvars != nil {
		return p.hostvars
	}
	r := p.r
	r.hostsMu.Lock()
	defer r.hostsMu.Unlock()
	hv := make(map[string]any, len(r.hosts))
	for name, h := range r.hosts {
		if h.view != nil {
			hv[name] = h.view
			continue
		}
		if h.outside == nil {
			h.outside = template.Vars(h.host.Vars, h.facts, r.opts.ExtraVars)
			h.outside["inventory_hostname"] = name
		}
		hv[name] = h.outside
	}
	p.hostvars = hv
	return hv
}

// refreshDirty rebuilds the views of hosts whose facts changed.
func (p *playRun) refreshDirty(hosts []*hostState) {
	var dirty []*hostState
	for _, h := range hosts {
		if h.dirty {
			dirty = append(dirty, h)
		}
	}
	p.refresh(dirty...)
}

// inherit carries block keywords down to the tasks of the block.
type inherit struct {
	when          []string
	vars          []map[string]any
	tags          []string
	become        *bool
	noLog         bool
	ignoreErrors  bool
	delegateTo    string
	runOnce       bool
	rescuable     bool // a failure here goes to an enclosing rescue
	handler       bool
	free          bool // in a strategy: free host goroutine holding p.gil
	fatal         *bool
	timeout       int
	ignoreUnreach bool
	conn          ConnKeywords
	env           []any // environment: mappings (or templates), outer first
	defaults      []map[string]map[string]any
	checkMode     *bool
	diff          *bool
	throttle      int
	dyn           []map[string]string // templated keywords of enclosing blocks
	// perHost are the loop variables of an include_tasks loop, per host.
	perHost map[*hostState]map[string]any
}

func (p *playRun) rootInherit() *inherit {
	play := p.play
	b := play.Become
	in := &inherit{tags: play.Tags, become: &b, conn: play.Conn, checkMode: play.CheckMode, diff: play.Diff}
	if play.Environment != nil {
		in.env = []any{play.Environment}
	}
	if play.ModuleDefaults != nil {
		in.defaults = []map[string]map[string]any{play.ModuleDefaults}
	}
	return in.child(&play.keywords)
}

// child returns what the tasks of block b inherit.
func (in *inherit) child(b *Task) *inherit {
	c := *in
	c.when = append(slices.Clip(in.when), b.When...)
	if b.Vars != nil {
		c.vars = append(slices.Clip(in.vars), b.Vars)
	}
	c.tags = append(slices.Clip(in.tags), b.Tags...)
	if b.Become != nil {
		c.become = b.Become
	}
	c.noLog = in.noLog || b.NoLog
	c.ignoreErrors = in.ignoreErrors || b.IgnoreErrors
	if b.DelegateTo != "" {
		c.delegateTo = b.DelegateTo
	}
	c.runOnce = in.runOnce || b.RunOnce
	c.conn = in.conn.over(b.Conn)
	if b.Environment != nil {
		c.env = append(slices.Clip(in.env), b.Environment)
	}
	if b.ModuleDefaults != nil {
		c.defaults = append(slices.Clip(in.defaults), b.ModuleDefaults)
	}
	if b.CheckMode != nil {
		c.checkMode = b.CheckMode
	}
	if b.Diff != nil {
		c.diff = b.Diff
	}
	if b.Throttle > 0 {
		c.throttle = b.Throttle
	}
	if b.AnyErrorsFatal != nil {
		c.fatal = b.AnyErrorsFatal
	}
	c.ignoreUnreach = in.ignoreUnreach || b.IgnoreUnreachable
	if b.Timeout > 0 {
		c.timeout = b.Timeout
	}
	if b.dyn != nil {
		c.dyn = append(slices.Clip(in.dyn), b.dyn)
	}
	return &c
}

// taskVars builds the variables a task sees on a host: the host's view,
// hostvars, its role's defaults and vars, block and task vars (templated),
// role parameters, and the loop variables later.
func (p *playRun) taskVars(h *hostState, t *Task, in *inherit, hv map[string]any) (map[string]any, error) {
	vars := make(map[string]any, len(h.view)+8)
	maps.Copy(vars, h.view)
	vars["hostvars"] = hv
	maps.Copy(vars, in.perHost[h])
	if t.role != nil {
		p.roleLayers(h, t.role, vars)
	}
	for _, layer := range append(slices.Clip(in.vars), t.Vars) {
		for k, v := range layer {
			if _, isFact := h.facts[k]; isFact {
				continue
			}
			if _, isExtra := p.r.opts.ExtraVars[k]; isExtra {
				continue
			}
			rv, err := p.r.eng.Render(v, vars)
			if err != nil {
				return nil, fmt.Errorf("vars: %s: %w", k, err)
			}
			vars[k] = rv
		}
	}
	if t.role != nil && len(t.role.params) > 0 {
		var pending []string
		for k, v := range t.role.params {
			if _, isExtra := p.r.opts.ExtraVars[k]; !isExtra {
				vars[k] = v
				pending = append(pending, k)
			}
		}
		p.resolve(vars, pending)
	}
	return vars, nil
}

// roleLayers puts a role task's own defaults and vars into vars, where no
// layer above them defines the name (Ansible's precedence: role defaults
// are the lowest, role vars are above play vars and vars_files, below
// block/task vars, include_vars and set_fact). They are already in the
// view when the role is public; this makes the task's own role win over
// other roles' and serves private (include_role) roles.
func (p *playRun) roleLayers(h *hostState, ru *roleUse, vars map[string]any) {
	r, play := p.r, p.play
	var pending []string
	for k, v := range ru.defaults {
		if ru.public && !play.roleShared[k] {
			continue // already in the view, from this role
		}
		if !inAny(k, h.host.Vars, play.Vars, play.VarsPrompt, p.files, play.roleVars, ru.vars, h.facts, r.opts.ExtraVars) {
			vars[k] = v
			pending = append(pending, k)
		}
	}
	for k, v := range ru.vars {
		if ru.public && !play.roleShared[k] {
			continue
		}
		if !inAny(k, h.facts, r.opts.ExtraVars) {
			vars[k] = v
			pending = append(pending, k)
		}
	}
	vars["role_path"], vars["role_name"], vars["ansible_role_name"] = ru.role.Dir, ru.role.Name, ru.role.Name
	p.resolve(vars, pending)
}

func inAny(k string, layers ...map[string]any) bool {
	for _, l := range layers {
		if _, ok := l[k]; ok {
			return true
		}
	}
	return false
}
