package inventory

import (
	"slices"
	"strings"
)

// Names of the two groups every inventory has.
const (
	// AllGroup is the implicit group that is the ancestor of every group.
	AllGroup = "all"
	// UngroupedGroup holds the hosts that belong to no group but all.
	UngroupedGroup = "ungrouped"
)

// Inventory is a loaded inventory: hosts, groups and their variables.
type Inventory struct {
	hosts       []*Host
	hostByName  map[string]*Host
	groups      []*Group
	groupByName map[string]*Group
	warnings    []string
}

// Host is one inventory host.
type Host struct {
	// Name is the inventory hostname (Ansible's inventory_hostname).
	Name string

	pos        Pos      // where the host was first declared
	groups     []*Group // groups the host is a direct member of, in order joined
	invVars    varSet   // vars from the inventory file (inline INI, YAML hosts:)
	fileVars   varSet   // vars from host_vars/
	merged     varSet   // all vars with precedence applied
	groupNames []string // sorted names of every group the host is in, but all
}

// Group is one inventory group.
type Group struct {
	// Name is the group name.
	Name string
	// Hosts are the names of the hosts directly in the group, in inventory
	// order (hosts of child groups are not repeated here).
	Hosts []string
	// Children are the names of the child groups, in inventory order.
	Children []string
	// Vars are the group's own variables: the inventory file's, overridden by
	// its group_vars/ files. Inherited variables are not included.
	Vars map[string]any

	pos      Pos
	hosts    []*Host
	hostSet  map[*Host]bool
	children []*Group
	parents  []*Group
	depth    int // longest distance from all
	priority int // ansible_group_priority, default 1
	invVars  varSet
	fileVars varSet
}

// newInventory returns an inventory holding only the implicit groups.
func newInventory() *Inventory {
	inv := &Inventory{hostByName: map[string]*Host{}, groupByName: map[string]*Group{}}
	all := inv.addGroup(AllGroup, Pos{})
	ungrouped := inv.addGroup(UngroupedGroup, Pos{})
	all.children = append(all.children, ungrouped)
	ungrouped.parents = append(ungrouped.parents, all)
	return inv
}

// Hosts returns every host in the order it was first declared. (Select("all")
// returns Ansible's order instead, which walks the group tree.)
func (inv *Inventory) Hosts() []*Host { return slices.Clone(inv.hosts) }

// Host returns the named host, or nil.
func (inv *Inventory) Host(name string) *Host { return inv.hostByName[name] }

// Groups returns every group in the order it was first declared; all and
// ungrouped come first.
func (inv *Inventory) Groups() []*Group { return slices.Clone(inv.groups) }

// Group returns the named group, or nil.
func (inv *Inventory) Group(name string) *Group { return inv.groupByName[name] }

// Warnings returns what Ansible would warn about while loading: a name used
// for both a host and a group, group_vars/ or host_vars/ files that match no
// group or host, skipped entries.
func (inv *Inventory) Warnings() []string { return slices.Clone(inv.warnings) }

// Vars returns the host's variables with Ansible's precedence applied (see
// mergeHostVars). The map is a deep copy the caller may modify. Magic
// variables (inventory_hostname, group_names...) are not included.
func (h *Host) Vars() map[string]any { return deepCopyMap(h.merged.vals) }

// Var returns one merged variable and whether it is set.
func (h *Host) Var(name string) (any, bool) {
	v, ok := h.merged.vals[name]
	return deepCopy(v), ok
}

// VarPos returns where the merged value of a variable was set.
func (h *Host) VarPos(name string) (Pos, bool) {
	p, ok := h.merged.pos[name]
	return p, ok
}

// Pos returns where the host was first declared.
func (h *Host) Pos() Pos { return h.pos }

// Groups returns the sorted names of every group the host belongs to,
// directly or through child groups, except all (Ansible's group_names).
func (h *Host) Groups() []string { return slices.Clone(h.groupNames) }

// Pos returns where the group was first declared (zero for all and ungrouped).
func (g *Group) Pos() Pos { return g.pos }

func (inv *Inventory) warn(format string, args ...any) {
	inv.warnings = append(inv.warnings, sprintf(format, args...))
}

// addGroup returns the named group, creating it when it is new.
func (inv *Inventory) addGroup(name string, pos Pos) *Group {
	if g, ok := inv.groupByName[name]; ok {
		return g
	}
	g := &Group{Name: name, pos: pos, priority: 1}
	inv.groups = append(inv.groups, g)
	inv.groupByName[name] = g
	return g
}

// addHost returns the named host, creating it when it is new, and makes it a
// member of g when g is not nil.
func (inv *Inventory) addHost(name string, pos Pos, g *Group) *Host {
	h, ok := inv.hostByName[name]
	if !ok {
		h = &Host{Name: name, pos: pos}
		inv.hosts = append(inv.hosts, h)
		inv.hostByName[name] = h
	}
	if g != nil {
		g.addHost(h)
	}
	return h
}

func (g *Group) addHost(h *Host) {
	if g.hostSet[h] {
		return
	}
	if g.hostSet == nil {
		g.hostSet = map[*Host]bool{}
	}
	g.hostSet[h] = true
	g.hosts = append(g.hosts, h)
	h.groups = append(h.groups, g)
}

func (g *Group) removeHost(h *Host) {
	delete(g.hostSet, h)
	g.hosts = slices.DeleteFunc(g.hosts, func(x *Host) bool { return x == h })
	h.groups = slices.DeleteFunc(h.groups, func(x *Group) bool { return x == g })
}

// addChild makes child a child group of parent; pos is where that was
// declared. Like Ansible it refuses an edge that would make a loop.
func addChild(parent, child *Group, pos Pos) error {
	if slices.Contains(parent.children, child) {
		return nil
	}
	if child.Name == AllGroup {
		return errAt(pos, groupSubject(parent.Name), ErrCycle, ": all is the root group and cannot be a child of %s", parent.Name)
	}
	if path := childPath(child, parent); path != nil {
		names := []string{parent.Name}
		for _, g := range path {
			names = append(names, g.Name)
		}
		return errAt(pos, groupSubject(parent.Name), ErrCycle, ": %s", strings.Join(names, " -> "))
	}
	parent.children = append(parent.children, child)
	child.parents = append(child.parents, parent)
	return nil
}

// childPath returns the groups from `from` down to `to` through children,
// or nil when `to` is not `from` or one of its descendants.
func childPath(from, to *Group) []*Group {
	seen := map[*Group]bool{}
	var walk func(g *Group) []*Group
	walk = func(g *Group) []*Group {
		if g == to {
			return []*Group{g}
		}
		if seen[g] {
			return nil
		}
		seen[g] = true
		for _, c := range g.children {
			if p := walk(c); p != nil {
				return append([]*Group{g}, p...)
			}
		}
		return nil
	}
	return walk(from)
}

// reconcile applies Ansible's post-parse rules (InventoryData.reconcile_inventory):
// every parentless group becomes a child of all, a host in no group but all
// goes to ungrouped, and a host in another group leaves ungrouped.
func (inv *Inventory) reconcile() {
	all, ungrouped := inv.groupByName[AllGroup], inv.groupByName[UngroupedGroup]
	for _, g := range inv.groups {
		if g != all && len(g.parents) == 0 {
			all.children = append(all.children, g)
			g.parents = append(g.parents, all)
		}
	}
	for _, h := range inv.hosts {
		others := slices.ContainsFunc(h.groups, func(g *Group) bool { return g != all && g != ungrouped })
		switch {
		case others && slices.Contains(h.groups, ungrouped):
			ungrouped.removeHost(h)
		case !others:
			ungrouped.addHost(h)
		}
	}
	for _, g := range inv.groups {
		if inv.hostByName[g.Name] != nil {
			inv.warn("Found both group and host with same name: %s", g.Name)
		}
	}
	inv.computeDepths()
}

// computeDepths sets every group's depth to its longest distance from all,
// which is what Ansible's incremental depth updates amount to.
func (inv *Inventory) computeDepths() {
	memo := map[*Group]int{}
	var depth func(g *Group) int
	depth = func(g *Group) int {
		if d, ok := memo[g]; ok {
			return d
		}
		d := 0
		for _, p := range g.parents {
			d = max(d, depth(p)+1)
		}
		memo[g] = d
		return d
	}
	for _, g := range inv.groups {
		g.depth = depth(g)
	}
}

// ancestors returns g's ancestor groups (not g itself), each once.
func (g *Group) ancestors() []*Group {
	var out []*Group
	seen := map[*Group]bool{}
	var walk func(x *Group)
	walk = func(x *Group) {
		for _, p := range x.parents {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
				walk(p)
			}
		}
	}
	walk(g)
	return out
}

// allGroups returns every group h is in, directly or by ancestry, each once.
func (h *Host) allGroups() []*Group {
	var out []*Group
	seen := map[*Group]bool{}
	for _, g := range h.groups {
		for _, x := range append([]*Group{g}, g.ancestors()...) {
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
	}
	return out
}

// descendants returns g and the groups below it in Ansible's order
// (Group._walk_relationship with preserve_ordering): g, its children, then
// each further level in the order it was reached.
func (g *Group) descendants() []*Group {
	ordered := []*Group{g}
	seen := map[*Group]bool{g: true}
	level := []*Group{g}
	for len(level) > 0 {
		var next []*Group
		for _, x := range level {
			for _, c := range x.children {
				if !seen[c] {
					seen[c] = true
					ordered = append(ordered, c)
					next = append(next, c)
				}
			}
		}
		level = next
	}
	return ordered
}

// allHosts returns the hosts of g and of its descendants, each once, in
// Ansible's order (Group.get_hosts).
func (g *Group) allHosts() []*Host {
	var out []*Host
	seen := map[*Host]bool{}
	for _, d := range g.descendants() {
		for _, h := range d.hosts {
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

// publish fills the exported fields from the internal graph once loading is
// done.
func (inv *Inventory) publish() {
	for _, g := range inv.groups {
		g.Hosts = hostNames(g.hosts)
		g.Children = groupNames(g.children)
		own := varSet{}
		own.merge(g.invVars)
		own.merge(g.fileVars)
		g.Vars = deepCopyMap(own.vals)
	}
	for _, h := range inv.hosts {
		h.merged = mergeHostVars(h)
		for _, g := range h.allGroups() {
			if g.Name != AllGroup {
				h.groupNames = append(h.groupNames, g.Name)
			}
		}
		slices.Sort(h.groupNames)
	}
}

func hostNames(hs []*Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

func groupNames(gs []*Group) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Name
	}
	return out
}
