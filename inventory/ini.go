package inventory

import (
	"bufio"
	"bytes"
	"regexp"
	"strconv"
	"strings"
)

var (
	// iniSection is "[group]" or "[group:tag]" with an optional comment
	// (Ansible's patterns['section']).
	iniSection = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`)
	// iniGroupName is one line of a [group:children] section.
	iniGroupName = regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
	// invalidGroupChars matches group names Ansible warns about
	// (C.INVALID_VARIABLE_NAMES).
	invalidGroupChars = regexp.MustCompile(`^[\d\W]|[^\w]`)
)

// ParseINI parses an INI inventory. name is used in positions; the result
// has no group_vars/ or host_vars/ (use Load for those).
func ParseINI(name string, data []byte) (*Inventory, error) {
	inv := newInventory()
	if err := parseINIInto(inv, name, data); err != nil {
		return nil, err
	}
	return finish(inv, nil)
}

// iniParser holds the state of one pass over an INI file
// (ansible/plugins/inventory/ini.py).
type iniParser struct {
	inv   *Inventory
	file  string
	group *Group
	state string // hosts, children or vars
	// pending are groups named by [x:vars] or [p:children] but not yet
	// declared by [x] or [x:children], in the order first seen.
	pending      map[string]*pendingDecl
	pendingOrder []string
}

type pendingDecl struct {
	pos     Pos
	state   string
	parents []*Group
	edges   []Pos // where each parent named the child
}

func parseINIInto(inv *Inventory, file string, data []byte) error {
	p := &iniParser{inv: inv, file: file, state: "hosts", pending: map[string]*pendingDecl{}}
	p.group = inv.groupByName[UngroupedGroup]
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		pos := Pos{File: file, Line: n, Col: strings.Index(raw, line) + 1}
		if err := p.line(line, pos); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return errAt(Pos{File: file}, "", ErrSyntax, ": %v", err)
	}
	return p.checkPending()
}

func (p *iniParser) line(line string, pos Pos) error {
	if m := iniSection.FindStringSubmatch(line); m != nil {
		return p.section(m[1], m[2], pos)
	}
	if line[0] == '[' && line[len(line)-1] == ']' {
		return errAt(pos, "", ErrSyntax, ": invalid section entry %q: make sure there are no spaces or other invalid characters in it", line)
	}
	switch p.state {
	case "hosts":
		return p.hostLine(line, pos)
	case "vars":
		return p.varLine(line, pos)
	default:
		return p.childLine(line, pos)
	}
}

func (p *iniParser) section(name, tag string, pos Pos) error {
	if tag == "" {
		tag = "hosts"
	}
	if tag != "hosts" && tag != "children" && tag != "vars" {
		return errAt(pos, groupSubject(name), ErrSyntax, ": section [%s:%s] has unknown type %q (want hosts, children or vars)", name, tag, tag)
	}
	if p.inv.groupByName[name] == nil {
		if tag == "vars" && p.pending[name] == nil {
			p.addPending(name, &pendingDecl{pos: pos, state: "vars"})
		}
		p.newGroup(name, pos)
	}
	p.group, p.state = p.inv.groupByName[name], tag
	if d := p.pending[name]; d != nil && tag != "vars" {
		delete(p.pending, name)
		for i, parent := range d.parents {
			if err := addChild(parent, p.group, d.edges[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *iniParser) newGroup(name string, pos Pos) {
	if invalidGroupChars.MatchString(name) {
		p.inv.warn("%s: invalid characters in group name %q (Ansible keeps them but warns)", pos, name)
	}
	p.inv.addGroup(name, pos)
}

func (p *iniParser) addPending(name string, d *pendingDecl) {
	p.pending[name] = d
	p.pendingOrder = append(p.pendingOrder, name)
}

func (p *iniParser) hostLine(line string, pos Pos) error {
	toks, col, err := splitWords(line)
	if err != nil {
		return errAt(Pos{pos.File, pos.Line, pos.Col + col - 1}, "", ErrSyntax, ": host definition %q: %v", line, err)
	}
	if len(toks) == 0 || toks[0].text == "" {
		return errAt(pos, "", ErrSyntax, ": empty host name in %q", line)
	}
	hostPos := Pos{pos.File, pos.Line, pos.Col + toks[0].col - 1}
	names, port, err := expandHostPattern(toks[0].text, hostPos)
	if err != nil {
		return err
	}
	var vars varSet
	for _, t := range toks[1:] {
		tpos := Pos{pos.File, pos.Line, pos.Col + t.col - 1}
		k, v, ok := strings.Cut(t.text, "=")
		if !ok || k == "" {
			return errAt(tpos, hostSubject(toks[0].text), ErrSyntax, ": expected key=value host variable assignment, got %q", t.text)
		}
		vars.set(k, iniValue(v), tpos)
	}
	for _, name := range names {
		p.populateHost(name, hostPos, port, vars)
	}
	return nil
}

// populateHost adds a host to the current group with its inline vars
// (BaseInventoryPlugin._populate_host_vars); like Ansible, the port of a
// host:port entry becomes ansible_port only where the host is first seen.
func (p *iniParser) populateHost(name string, pos Pos, port int, vars varSet) {
	isNew := p.inv.hostByName[name] == nil
	h := p.inv.addHost(name, pos, p.group)
	if isNew && port != 0 {
		h.invVars.set("ansible_port", port, pos)
	}
	h.invVars.merge(vars)
}

func (p *iniParser) varLine(line string, pos Pos) error {
	k, v, ok := strings.Cut(line, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return errAt(pos, groupSubject(p.group.Name), ErrSyntax, ": expected key=value, got %q", line)
	}
	return setGroupVar(p.group, k, iniValue(strings.TrimSpace(v)), pos)
}

func (p *iniParser) childLine(line string, pos Pos) error {
	m := iniGroupName.FindStringSubmatch(line)
	if m == nil {
		return errAt(pos, groupSubject(p.group.Name), ErrSyntax, ": expected a group name in [%s:children], got %q", p.group.Name, line)
	}
	child := m[1]
	if g := p.inv.groupByName[child]; g != nil {
		return addChild(p.group, g, pos)
	}
	d := p.pending[child]
	if d == nil {
		d = &pendingDecl{pos: pos, state: "children"}
		p.addPending(child, d)
	}
	d.parents = append(d.parents, p.group)
	d.edges = append(d.edges, pos)
	return nil
}

// checkPending reports the first group that was used but never declared.
func (p *iniParser) checkPending() error {
	for _, name := range p.pendingOrder {
		d := p.pending[name]
		if d == nil {
			continue
		}
		if d.state == "vars" {
			return errAt(d.pos, groupSubject(name), ErrUndefinedGroup, ": section [%s:vars] is not valid for a group that has no [%s] or [%s:children] section", name, name, name)
		}
		parent := d.parents[len(d.parents)-1].Name
		return errAt(d.edges[len(d.edges)-1], groupSubject(parent), ErrUndefinedGroup, " %q in section [%s:children]", name, parent)
	}
	return nil
}

// setGroupVar sets a group variable from an inventory source. Like Ansible's
// Group.set_variable, ansible_group_priority sets the group's merge priority
// instead of a variable.
func setGroupVar(g *Group, k string, v any, pos Pos) error {
	if k != "ansible_group_priority" {
		g.invVars.set(k, v, pos)
		return nil
	}
	n, ok := toInt(v)
	if !ok {
		return errAt(pos, groupSubject(g.Name), ErrBadValue, ": ansible_group_priority %v is not an integer", v)
	}
	g.priority = n
	return nil
}

// toInt accepts an int, an integral float or a decimal string, as Python's int() does.
func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case float64:
		return int(x), x == float64(int(x))
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}
