package playbooks

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// group_by and add_host change the run's inventory, as Ansible's do: the modules return
// Ansible's result keys (add_group/parent_groups, add_host) and the engine applies them
// after the step (applyInventory), so that later plays can target the new groups and hosts,
// and `groups`/`group_names` include them. The caller's Options are never modified: the
// runner works on copies of Groups and of the host variables.

// bypassesHostLoop reports a module Ansible runs once per task, on the first host, whatever
// the play's hosts (its BYPASS_HOST_LOOP actions): unlike run_once, the result stays with
// that host.
func bypassesHostLoop(module string) bool { return module == "add_host" }

// groupByModule puts the host in the group named key (and key in parents).
func groupByModule(_ context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("group_by", t.Args, "key", "parents"); err != nil {
		return Result{}, err
	}
	key, err := t.Args.Required("key")
	if err != nil {
		return Result{}, err
	}
	key = strings.ReplaceAll(strings.TrimSpace(key), " ", "-")
	parents, err := t.Args.StringList("parents")
	if err != nil {
		return Result{}, err
	}
	if parents == nil {
		parents = []string{"all"}
	}
	return Result{Changed: true, Data: map[string]any{"add_group": key, "parent_groups": toAnyList(parents)}}, nil
}

// addHostModule adds a host (name, with groups and any other argument as its variables).
func addHostModule(_ context.Context, t *TaskContext) (Result, error) {
	name := ""
	for _, k := range []string{"name", "host", "hostname"} {
		if v, _ := t.Args.String(k, ""); v != "" && name == "" {
			name = v
		}
	}
	if name == "" {
		return Result{}, fmt.Errorf("%w \"name\": required", ErrArgs)
	}
	var groups []string
	for _, k := range []string{"groups", "group", "groupname"} {
		if v, ok := t.Args[k].(string); ok {
			groups = append(groups, splitGroupList(v)...)
		} else if t.Args.Has(k) {
			l, err := t.Args.StringList(k)
			if err != nil {
				return Result{}, err
			}
			groups = append(groups, l...)
		}
	}
	vars := map[string]any{}
	for k, v := range t.Args {
		switch k {
		case "name", "host", "hostname", "groups", "group", "groupname":
		default:
			vars[k] = v
		}
	}
	if h, port, ok := strings.Cut(name, ":"); ok && !strings.Contains(port, ":") {
		name, vars["ansible_port"] = h, port
	}
	return Result{Changed: true, Data: map[string]any{"add_host": map[string]any{
		"host_name": name, "groups": toAnyList(groups), "host_vars": vars}}}, nil
}

func splitGroupList(s string) []string {
	var out []string
	for _, g := range strings.Split(s, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

func toAnyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// dynamicInventory is what group_by and add_host added during the run.
type dynamicInventory struct {
	groups map[string]bool // groups created by the run (the selector resolves them)
	hosts  map[string]bool // hosts added by the run
}

// applyInventory applies a result's add_group/add_host to the runner (called from the
// single goroutine that applies a step's outcomes).
func (p *playRun) applyInventory(h *hostState, data map[string]any) {
	group, _ := data["add_group"].(string)
	added, _ := data["add_host"].(map[string]any)
	if group == "" && added == nil {
		return
	}
	r := p.r
	if r.dyn == nil {
		r.dyn = &dynamicInventory{groups: map[string]bool{}, hosts: map[string]bool{}}
		groups := make(map[string][]string, len(r.opts.Groups))
		for g, m := range r.opts.Groups {
			groups[g] = slices.Clone(m)
		}
		r.opts.Groups = groups
		r.opts.Select = r.dyn.selector(r.opts.Select, func() map[string][]string { return r.opts.Groups }, r.allNames)
	}
	if group != "" {
		r.addToGroup(group, h.host.Name)
		parents, _ := data["parent_groups"].([]any)
		for _, parent := range parents {
			if s, _ := parent.(string); s != "" && s != "all" {
				r.addToGroup(s, h.host.Name)
			}
		}
	}
	if added != nil {
		r.addHost(added)
	}
	p.groups = nil // the groups variable is rebuilt with the new members
}

func (r *runner) addToGroup(group, host string) {
	if !r.dyn.groups[group] && r.opts.Groups[group] == nil {
		r.dyn.groups[group] = true
	}
	if !slices.Contains(r.opts.Groups[group], host) {
		r.opts.Groups[group] = append(r.opts.Groups[group], host)
	}
}

func (r *runner) addHost(added map[string]any) {
	name, _ := added["host_name"].(string)
	if name == "" {
		return
	}
	vars, _ := added["host_vars"].(map[string]any)
	r.hostsMu.Lock()
	h, ok := r.hosts[name]
	if !ok || !slices.Contains(r.order, h) {
		if !ok {
			h = newHostState(Host{Name: name})
			r.hosts[name] = h
		}
		r.order = append(r.order, h)
		r.dyn.hosts[name] = true
	}
	merged := maps.Clone(h.host.Vars)
	if merged == nil {
		merged = map[string]any{}
	}
	maps.Copy(merged, vars)
	h.host.Vars, h.view = merged, nil
	r.hostsMu.Unlock()
	groups, _ := added["groups"].([]any)
	for _, g := range groups {
		if s, _ := g.(string); s != "" {
			r.addToGroup(s, name)
		}
	}
}

// allNames lists every host of the run, added ones included, in order.
func (r *runner) allNames() []string {
	r.hostsMu.Lock()
	defer r.hostsMu.Unlock()
	out := make([]string, len(r.order))
	for i, h := range r.order {
		out[i] = h.host.Name
	}
	return out
}

// selector resolves patterns naming added groups or hosts itself (unions, &intersections
// and !exclusions of plain names, as Ansible combines them) and leaves every other pattern
// to base.
func (d *dynamicInventory) selector(base Selector, groups func() map[string][]string, all func() []string) Selector {
	return func(pattern string) ([]string, []string, error) {
		terms := splitPattern(pattern)
		dynamic := false
		for _, t := range terms {
			name := strings.TrimLeft(t, "&!")
			dynamic = dynamic || d.groups[name] || d.hosts[name] || (name == "all" || name == "*") && len(d.hosts) > 0
		}
		if !dynamic {
			return base(pattern)
		}
		var union, warnings []string
		var inter, excl [][]string
		for _, t := range terms {
			name := strings.TrimLeft(t, "&!")
			var names []string
			switch {
			case name == "all" || name == "*":
				names = all()
			case d.groups[name]:
				names = groups()[name]
			case d.hosts[name]:
				names = []string{name}
			default:
				n, w, err := base(name)
				if err != nil {
					return nil, w, err
				}
				names, warnings = n, append(warnings, w...)
				if g, ok := groups()[name]; ok {
					names = unionNames(names, g)
				}
			}
			switch {
			case strings.HasPrefix(t, "&"):
				inter = append(inter, names)
			case strings.HasPrefix(t, "!"):
				excl = append(excl, names)
			default:
				union = unionNames(union, names)
			}
		}
		for _, l := range inter {
			union = slices.DeleteFunc(union, func(n string) bool { return !slices.Contains(l, n) })
		}
		for _, l := range excl {
			union = slices.DeleteFunc(union, func(n string) bool { return slices.Contains(l, n) })
		}
		return union, warnings, nil
	}
}

func unionNames(a, b []string) []string {
	for _, n := range b {
		if !slices.Contains(a, n) {
			a = append(a, n)
		}
	}
	return a
}

// splitPattern splits a host pattern at ':' and ',' outside brackets (web[1:3] stays whole).
func splitPattern(p string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range p {
		switch {
		case c == '[':
			depth++
		case c == ']':
			depth--
		case (c == ':' || c == ',') && depth == 0:
			if s := strings.TrimSpace(p[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(p[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
