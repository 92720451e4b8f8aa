package inventory

import (
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ParseYAML parses a YAML (or JSON) inventory. name is used in positions;
// the result has no group_vars/ or host_vars/ (use Load for those).
func ParseYAML(name string, data []byte) (*Inventory, error) {
	inv := newInventory()
	if err := parseYAMLInto(inv, name, data); err != nil {
		return nil, err
	}
	return finish(inv, nil)
}

// yamlParser walks a YAML inventory (ansible/plugins/inventory/yaml.py),
// stricter than Ansible: keys it would skip with a warning are errors.
type yamlParser struct {
	inv  *Inventory
	file string
	// onPath holds the group bodies being parsed: an alias back to one of
	// them (a group that is its own child through an anchor) is an error.
	onPath map[*yaml.Node]bool
}

func parseYAMLInto(inv *Inventory, file string, data []byte) error {
	root, err := parseYAMLDoc(file, data)
	if err != nil || root == nil {
		return err
	}
	p := &yamlParser{inv: inv, file: file, onPath: map[*yaml.Node]bool{}}
	if root.Kind != yaml.MappingNode {
		return errAt(p.pos(root), "", ErrSyntax, ": a YAML inventory must be a mapping of group names, got %s", kindName(root))
	}
	pairs, err := mappingPairs(file, root)
	if err != nil {
		return err
	}
	for _, kv := range pairs {
		if kv.key.Value == "plugin" {
			return errAt(p.pos(kv.key), "", ErrSyntax, ": inventory plugin configuration files are not supported")
		}
		if _, err := p.group(kv.key, kv.at); err != nil {
			return err
		}
	}
	return nil
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAMLDoc parses one YAML document and returns its root node (nil for
// an empty document). Syntax errors carry the file and line.
func parseYAMLDoc(file string, data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		pos := Pos{File: file}
		msg := err.Error()
		if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
			pos.Line, _ = strconv.Atoi(m[1])
			msg = m[2]
		} else {
			pos.Line = locateYAMLError(data, msg)
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		return nil, errAt(pos, "", ErrSyntax, ": %s", msg)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolveAlias(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	return root, nil
}

// maxLocateLines bounds the search for the line of a YAML error.
const maxLocateLines = 2000

// locateYAMLError finds the line of a yaml.v3 error that came without one
// (unknown escape, unknown anchor...): the first prefix of whole lines that
// fails with the same message ends at that line. It returns 0 when unsure.
func locateYAMLError(data []byte, msg string) int {
	lines := strings.SplitAfter(string(data), "\n")
	var prefix strings.Builder
	for i, l := range lines {
		if i >= maxLocateLines {
			break
		}
		prefix.WriteString(l)
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(prefix.String()), &doc); err != nil && err.Error() == msg {
			return i + 1
		}
	}
	return 0
}

func (p *yamlParser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line, Col: n.Column} }

// group parses one group body (mapping with vars, children, hosts, or null)
// as written at (maybe an alias) and returns the group.
func (p *yamlParser) group(key, at *yaml.Node) (*Group, error) {
	body, err := followAlias(p.file, at, p.onPath, "group body: ")
	if err != nil {
		return nil, err
	}
	p.onPath[body] = true
	defer delete(p.onPath, body)
	name := key.Value
	if key.Kind != yaml.ScalarNode || name == "" {
		return nil, errAt(p.pos(key), "", ErrSyntax, ": group name must be a non-empty string")
	}
	if body.Kind != yaml.MappingNode && !isNull(body) {
		return nil, errAt(p.pos(body), groupSubject(name), ErrSyntax, ": group body must be a mapping with vars, children or hosts, got %s", kindName(body))
	}
	g := p.inv.groupByName[name]
	if g == nil {
		if invalidGroupChars.MatchString(name) {
			p.inv.warn("%s: invalid characters in group name %q (Ansible keeps them but warns)", p.pos(key), name)
		}
		g = p.inv.addGroup(name, p.pos(key))
	}
	if isNull(body) {
		return g, nil
	}
	pairs, err := mappingPairs(p.file, body)
	if err != nil {
		return nil, err
	}
	for _, kv := range pairs {
		if err := p.section(g, kv.key, kv.val); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (p *yamlParser) section(g *Group, key, val *yaml.Node) error {
	subject := groupSubject(g.Name)
	switch key.Value {
	case "vars", "children", "hosts":
	default:
		return errAt(p.pos(key), subject, ErrSyntax, ": unexpected key %q (a group has only vars, children and hosts)", key.Value)
	}
	if isNull(val) {
		return nil
	}
	if val.Kind == yaml.ScalarNode && key.Value != "vars" {
		// Ansible accepts "hosts: web1" for "hosts: {web1: }".
		val = &yaml.Node{Kind: yaml.MappingNode, Line: val.Line, Column: val.Column,
			Content: []*yaml.Node{val, {Kind: yaml.ScalarNode, Tag: "!!null", Line: val.Line, Column: val.Column}}}
	}
	if val.Kind != yaml.MappingNode {
		return errAt(p.pos(val), subject, ErrSyntax, ": %s must be a mapping, got %s", key.Value, kindName(val))
	}
	pairs, err := mappingPairs(p.file, val)
	if err != nil {
		return err
	}
	switch key.Value {
	case "vars":
		return p.groupVars(g, pairs)
	case "children":
		return p.children(g, pairs)
	default:
		return p.hosts(g, pairs)
	}
}

func (p *yamlParser) groupVars(g *Group, pairs []keyVal) error {
	for _, kv := range pairs {
		v, err := nodeValue(p.file, kv.val)
		if err != nil {
			return err
		}
		if err := setGroupVar(g, kv.key.Value, v, p.pos(kv.key)); err != nil {
			return err
		}
	}
	return nil
}

func (p *yamlParser) children(g *Group, pairs []keyVal) error {
	for _, kv := range pairs {
		child, err := p.group(kv.key, kv.at)
		if err != nil {
			return err
		}
		if err := addChild(g, child, p.pos(kv.key)); err != nil {
			return err
		}
	}
	return nil
}

func (p *yamlParser) hosts(g *Group, pairs []keyVal) error {
	for _, kv := range pairs {
		pos := p.pos(kv.key)
		if kv.key.Kind != yaml.ScalarNode || kv.key.Value == "" {
			return errAt(pos, groupSubject(g.Name), ErrSyntax, ": host name must be a non-empty string")
		}
		names, port, err := expandHostPattern(kv.key.Value, pos)
		if err != nil {
			return err
		}
		vars, err := p.hostVars(kv.key.Value, kv.val)
		if err != nil {
			return err
		}
		for _, name := range names {
			isNew := p.inv.hostByName[name] == nil
			h := p.inv.addHost(name, pos, g)
			if isNew && port != 0 {
				h.invVars.set("ansible_port", port, pos)
			}
			h.invVars.merge(vars)
		}
	}
	return nil
}

func (p *yamlParser) hostVars(host string, n *yaml.Node) (varSet, error) {
	var vars varSet
	if isNull(n) {
		return vars, nil
	}
	if n.Kind != yaml.MappingNode {
		return vars, errAt(p.pos(n), hostSubject(host), ErrSyntax, ": host variables must be a mapping, got %s", kindName(n))
	}
	pairs, err := mappingPairs(p.file, n)
	if err != nil {
		return vars, err
	}
	for _, kv := range pairs {
		v, err := nodeValue(p.file, kv.val)
		if err != nil {
			return vars, err
		}
		vars.set(kv.key.Value, v, p.pos(kv.key))
	}
	return vars, nil
}
