package inventory

import (
	"cmp"
	"fmt"
	"slices"
)

// varSet is a set of variables with the position each was set at.
type varSet struct {
	vals map[string]any
	pos  map[string]Pos
}

// set stores one variable; a later set of the same name replaces it (Ansible's
// default hash_behaviour=replace).
func (v *varSet) set(name string, val any, p Pos) {
	if v.vals == nil {
		v.vals, v.pos = map[string]any{}, map[string]Pos{}
	}
	v.vals[name] = val
	v.pos[name] = p
}

// merge copies every variable of src into v, replacing existing ones.
func (v *varSet) merge(src varSet) {
	for k, val := range src.vals {
		v.set(k, val, src.pos[k])
	}
}

// sortGroups orders groups the way Ansible merges their variables
// (ansible/inventory/helpers.py sort_groups): by depth (parents before
// children), then ansible_group_priority, then name.
func sortGroups(gs []*Group) []*Group {
	out := slices.Clone(gs)
	slices.SortFunc(out, func(a, b *Group) int {
		return cmp.Or(cmp.Compare(a.depth, b.depth), cmp.Compare(a.priority, b.priority), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// mergeVars applies Ansible's inventory precedence to a set of groups and an
// optional host. Ansible documents the order, lowest first, in "Understanding
// variable precedence" (docs.ansible.com, playbook_guide/playbooks_variables.html
// #understanding-variable-precedence):
//
//	inventory file or script group vars   (all first, then the other groups)
//	inventory group_vars/all
//	inventory group_vars/*
//	inventory file or script host vars
//	inventory host_vars/*
//
// and, in "How variables are merged" (inventory_guide/intro_inventory.html),
// that among groups the all group comes first, then parent groups, then child
// groups; groups at the same level merge by ansible_group_priority (higher
// wins, default 1) and then alphabetically (later wins). The code is the
// same as VariableManager.get_vars with the default VARIABLE_PRECEDENCE
// (all_inventory, groups_inventory, all_plugins_inventory,
// groups_plugins_inventory) followed by host vars and host_vars/ files.
func mergeVars(groups []*Group, h *Host) varSet {
	var all *Group
	var others []*Group
	for _, g := range groups {
		if g.Name == AllGroup {
			all = g
		} else {
			others = append(others, g)
		}
	}
	others = sortGroups(others)
	var out varSet
	if all != nil {
		out.merge(all.invVars)
	}
	for _, g := range others {
		out.merge(g.invVars)
	}
	if all != nil {
		out.merge(all.fileVars)
	}
	for _, g := range others {
		out.merge(g.fileVars)
	}
	if h != nil {
		out.merge(h.invVars)
		out.merge(h.fileVars)
	}
	return out
}

// mergeHostVars returns the variables of h with precedence applied.
func mergeHostVars(h *Host) varSet {
	out := mergeVars(h.allGroups(), h)
	if out.vals == nil {
		out.vals, out.pos = map[string]any{}, map[string]Pos{}
	}
	return out
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return deepCopyMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
