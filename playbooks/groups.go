package playbooks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// group_by and add_host change the run's in-memory inventory: groups made
// (or grown) by them are visible in `groups`, `group_names` and the host
// patterns of later plays; hosts added by add_host take part in later plays
// with the variables given (connected through the Connector like any host).

// bypassesHostLoop reports a module Ansible runs once per task, on the first host, whatever
// the play's hosts (its BYPASS_HOST_LOOP actions): unlike run_once, the result stays with
// that host.
func bypassesHostLoop(module string) bool { return ModuleName(module) == "add_host" }

// groupByModule is group_by: the host joins the group named by key (and
// its parents); the engine applies it after the task (applyInventory). Like
// Ansible 2.14 it reports changed.
type groupByModule struct{}

func (groupByModule) Run(_ context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("group_by", t.Args, "key", "parents"); err != nil {
		return Result{}, err
	}
	key, err := t.Args.Required("key")
	if err != nil {
		return Result{}, err
	}
	parents, err := t.Args.StringList("parents")
	if err != nil {
		return Result{}, err
	}
	key = strings.ReplaceAll(key, " ", "-")
	return Result{Changed: true, Data: map[string]any{"add_group": key, "parent_groups": toAny(parents)}}, nil
}

// addHostModule is add_host: a host (name, groups, other arguments as its
// variables) added to the run's inventory.
type addHostModule struct{}

func (addHostModule) Run(_ context.Context, t *TaskContext) (Result, error) {
	name := ""
	vars := map[string]any{}
	var groups []string
	for k, v := range t.Args {
		switch k {
		case "name", "hostname", "host":
			name, _ = v.(string)
		case "groups", "group", "groupname":
			l, err := Args{k: v}.StringList(k)
			if s, ok := v.(string); ok {
				l, err = strings.Split(s, ","), nil
			}
			if err != nil {
				return Result{}, err
			}
			for _, g := range l {
				if g = strings.TrimSpace(g); g != "" {
					groups = append(groups, g)
				}
			}
		default:
			vars[k] = v
		}
	}
	if name == "" {
		return Result{}, fmt.Errorf("%w: add_host needs name", ErrArgs)
	}
	if h, port, ok := strings.Cut(name, ":"); ok && !strings.Contains(port, ":") {
		name = h
		vars["ansible_port"] = port
	}
	return Result{Changed: true, Data: map[string]any{"add_host": map[string]any{
		"host_name": name, "groups": toAny(groups), "host_vars": vars}}}, nil
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// applyInventory applies what group_by and add_host returned on a host.
func (p *playRun) applyInventory(t *Task, h *hostState, o outcome) {
	if o.failed || o.unreachable || t.Module != "group_by" && t.Module != "add_host" {
		return
	}
	results := []map[string]any{o.res.Data}
	if l, ok := o.res.Data["results"].([]any); ok {
		results = results[:0]
		for _, r := range l {
			if m, ok := r.(map[string]any); ok {
				results = append(results, m)
			}
		}
	}
	r := p.r
	for _, d := range results {
		if g, ok := d["add_group"].(string); ok && g != "" {
			r.addToGroup(h.host.Name, g)
			for _, parent := range anyStrings(d["parent_groups"]) {
				r.addToGroup(h.host.Name, parent)
			}
		}
		if a, ok := d["add_host"].(map[string]any); ok {
			name, _ := a["host_name"].(string)
			vars, _ := a["host_vars"].(map[string]any)
			nh := r.hostByName(name)
			r.hostsMu.Lock()
			if !slices.Contains(r.added, name) && !slices.ContainsFunc(r.order, func(x *hostState) bool { return x.host.Name == name }) {
				r.added = append(r.added, name)
			}
			nh.host.Vars = mergeArgs(nh.host.Vars, vars)
			nh.outside = nil
			r.hostsMu.Unlock()
			for _, g := range anyStrings(a["groups"]) {
				r.addToGroup(name, g)
			}
		}
	}
	p.groups, p.hostvars, p.invChanged = nil, nil, true
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// addToGroup adds a host to a group of the run's inventory.
func (r *runner) addToGroup(host, group string) {
	if !slices.Contains(r.groups[group], host) {
		r.groups[group] = append(slices.Clone(r.groups[group]), host)
	}
	if !slices.Contains(r.dynGroups[group], host) {
		r.dynGroups[group] = append(r.dynGroups[group], host)
	}
}

// selectDynamic resolves a pattern that names groups made by group_by or
// add_host, or hosts added by add_host: term by term, unions (`a:b`, `a,b`),
// intersections (`&a`) and exclusions (`!a`), other terms through the
// Selector.
func (r *runner) selectDynamic(pattern string) ([]string, []string, error) {
	var out, warnings []string
	for _, term := range strings.FieldsFunc(pattern, func(c rune) bool { return c == ':' || c == ',' }) {
		term = strings.TrimSpace(term)
		op := byte(0)
		if term != "" && (term[0] == '&' || term[0] == '!') {
			op, term = term[0], term[1:]
		}
		names, w, err := r.resolveTerm(term)
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, w...)
		switch op {
		case '&':
			out = slices.DeleteFunc(out, func(n string) bool { return !slices.Contains(names, n) })
		case '!':
			out = slices.DeleteFunc(out, func(n string) bool { return slices.Contains(names, n) })
		default:
			for _, n := range names {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	return out, warnings, nil
}

func (r *runner) resolveTerm(term string) ([]string, []string, error) {
	dyn, isDyn := r.dynGroups[term]
	if !isDyn && slices.Contains(r.added, term) {
		return []string{term}, nil, nil
	}
	names, w, err := r.opts.Select(term)
	if !isDyn {
		if term == "all" || term == "*" {
			names = append(slices.Clone(names), r.added...)
		}
		return names, w, err
	}
	out := slices.Clone(names)
	for _, n := range dyn {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil, nil
}

func cloneGroups(g map[string][]string) map[string][]string {
	out := maps.Clone(g)
	if out == nil {
		out = map[string][]string{}
	}
	return out
}
