package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ListJSON renders the inventory like `ansible-inventory --list`: one key
// per non-empty group with its hosts and children in inventory order,
// all with its children only, and _meta.hostvars with the merged variables
// of every host that has any. Keys are sorted and indented by 4, as
// Ansible's json.dumps(sort_keys=True, indent=4) does.
func (inv *Inventory) ListJSON() ([]byte, error) {
	all := inv.groupByName[AllGroup]
	hosts := all.allHosts()
	results := map[string]any{}
	seen := map[*Group]bool{}
	var format func(g *Group)
	format = func(g *Group) {
		entry := map[string]any{}
		if g != all && len(g.hosts) > 0 {
			entry["hosts"] = hostNames(g.hosts)
		}
		if len(g.children) > 0 {
			entry["children"] = groupNames(g.children)
		}
		for _, c := range g.children {
			if !seen[c] {
				seen[c] = true
				format(c)
			}
		}
		if len(entry) > 0 {
			results[g.Name] = entry
		}
	}
	format(all)
	hostvars := map[string]any{}
	for _, h := range hosts {
		if len(h.merged.vals) > 0 {
			hostvars[h.Name] = h.merged.vals
		}
	}
	results["_meta"] = map[string]any{"hostvars": hostvars}
	return marshalAnsible(results)
}

// Graph renders the group tree from group (all when empty) like
// `ansible-inventory --graph`: "@group:" lines, child groups first, then
// hosts, indented with "  |" per level.
func (inv *Inventory) Graph(group string) (string, error) {
	if group == "" {
		group = AllGroup
	}
	top := inv.groupByName[group]
	if top == nil {
		return "", &Error{Subject: groupSubject(group), Err: ErrUnknownGroup}
	}
	var sb strings.Builder
	var walk func(g *Group, depth int)
	walk = func(g *Group, depth int) {
		graphLine(&sb, "@"+g.Name+":", depth)
		for _, c := range g.children {
			walk(c, depth+1)
		}
		if g.Name != AllGroup {
			for _, h := range g.hosts {
				graphLine(&sb, h.Name, depth+1)
			}
		}
	}
	walk(top, 0)
	return sb.String(), nil
}

func graphLine(sb *strings.Builder, name string, depth int) {
	if depth > 0 {
		sb.WriteString(strings.Repeat("  |", depth) + "--")
	}
	sb.WriteString(name)
	sb.WriteByte('\n')
}

// HostVars returns the merged variables of one host, as
// `ansible-inventory --host NAME` shows them.
func (inv *Inventory) HostVars(name string) (map[string]any, error) {
	h := inv.hostByName[name]
	if h == nil {
		return nil, &Error{Subject: hostSubject(name), Err: ErrUnknownHost}
	}
	return h.Vars(), nil
}

// HostJSON renders HostVars(name) as `ansible-inventory --host NAME` does.
func (inv *Inventory) HostJSON(name string) ([]byte, error) {
	vars, err := inv.HostVars(name)
	if err != nil {
		return nil, err
	}
	return marshalAnsible(vars)
}

// marshalAnsible writes JSON with sorted keys, 4-space indent and no HTML
// escaping, followed by a newline.
func marshalAnsible(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding inventory JSON: %w", err)
	}
	return buf.Bytes(), nil
}
