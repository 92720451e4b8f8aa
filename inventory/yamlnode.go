package inventory

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// maxValueNodes bounds how many YAML nodes one variable may expand to
// through aliases (a "billion laughs" document fails instead of eating
// memory).
const maxValueNodes = 1 << 20

// keyVal is one pair of a mapping: val has aliases resolved, at is the
// value as written (the alias node itself when there is one), for positions.
type keyVal struct{ key, val, at *yaml.Node }

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolveAlias(n)
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "scalar " + strconv.Quote(n.Value)
	}
	return "an unexpected node"
}

// mappingPairs returns the key/value pairs of a mapping node with aliases
// resolved and merge keys (<<) applied: merged keys first, explicit keys
// override them. A key given twice is an error (PyYAML would only warn), and
// so is a merge that leads back to a mapping it is merging into.
func mappingPairs(file string, n *yaml.Node) ([]keyVal, error) {
	w := &mergeWalk{file: file, onPath: map[*yaml.Node]bool{}, done: map[*yaml.Node][]keyVal{}}
	return w.pairs(resolveAlias(n))
}

// mergeWalk resolves merge keys. onPath holds the mappings being merged
// into (an alias back to one of them is a cycle); done memoises finished
// mappings so a document merging the same anchor many times stays linear.
type mergeWalk struct {
	file   string
	onPath map[*yaml.Node]bool
	done   map[*yaml.Node][]keyVal
}

func (w *mergeWalk) pairs(n *yaml.Node) ([]keyVal, error) {
	if out, ok := w.done[n]; ok {
		return out, nil
	}
	w.onPath[n] = true
	defer delete(w.onPath, n)
	var merged, explicit []keyVal
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			m, err := w.sources(v)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		k = resolveAlias(k)
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(Pos{w.file, k.Line, k.Column}, "", ErrSyntax, ": mapping keys must be scalars, got %s", kindName(k))
		}
		if prev, dup := seen[k.Value]; dup {
			return nil, errAt(Pos{w.file, k.Line, k.Column}, "", ErrSyntax, ": key %q already defined at line %d", k.Value, prev.Line)
		}
		seen[k.Value] = k
		explicit = append(explicit, keyVal{key: k, val: resolveAlias(v), at: v})
	}
	var out []keyVal
	mergedSeen := map[string]bool{}
	for _, kv := range merged {
		if seen[kv.key.Value] == nil && !mergedSeen[kv.key.Value] {
			mergedSeen[kv.key.Value] = true
			out = append(out, kv)
		}
	}
	out = append(out, explicit...)
	w.done[n] = out
	return out, nil
}

// sources returns the pairs a merge key brings in: one mapping or a list of
// mappings (earlier ones win, as YAML specifies).
func (w *mergeWalk) sources(raw *yaml.Node) ([]keyVal, error) {
	v, err := w.follow(raw)
	if err != nil {
		return nil, err
	}
	var srcs []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		srcs = []*yaml.Node{raw}
	case yaml.SequenceNode:
		srcs = v.Content
	default:
		return nil, errAt(Pos{w.file, v.Line, v.Column}, "", ErrSyntax, ": merge key << needs a mapping or a list of mappings")
	}
	var out []keyVal
	for _, rs := range srcs {
		s, err := w.follow(rs)
		if err != nil {
			return nil, err
		}
		if s.Kind != yaml.MappingNode {
			return nil, errAt(Pos{w.file, s.Line, s.Column}, "", ErrSyntax, ": merge key << needs a mapping or a list of mappings")
		}
		pairs, err := w.pairs(s)
		if err != nil {
			return nil, err
		}
		out = append(out, pairs...)
	}
	return out, nil
}

// follow resolves raw and fails when it leads back to a mapping being
// merged into, naming the alias's position and the anchor.
func (w *mergeWalk) follow(raw *yaml.Node) (*yaml.Node, error) {
	return followAlias(w.file, raw, w.onPath, "merge key: ")
}

// followAlias resolves raw and fails when it leads back to a node in
// onPath (a value containing itself), naming where the alias is written and
// the anchor it points to.
func followAlias(file string, raw *yaml.Node, onPath map[*yaml.Node]bool, what string) (*yaml.Node, error) {
	n := resolveAlias(raw)
	if onPath[n] {
		return nil, errAt(Pos{file, raw.Line, raw.Column}, "", ErrSyntax, ": %salias cycle through anchor &%s", what, n.Anchor)
	}
	return n, nil
}

// nodeValue converts a YAML node into plain Go values: map[string]any,
// []any, string, int, float64, bool or nil. Like Ansible's (YAML 1.1)
// loader, unquoted yes/no/on/off are booleans and timestamps stay strings.
func nodeValue(file string, n *yaml.Node) (any, error) {
	c := &converter{file: file, budget: maxValueNodes, onPath: map[*yaml.Node]bool{}}
	return c.convert(n)
}

// converter turns YAML nodes into Go values. budget bounds the nodes one
// value may expand to; onPath holds the collections being converted, so an
// alias back to one of them (a value containing itself) is an error.
type converter struct {
	file   string
	budget int
	onPath map[*yaml.Node]bool
}

func (c *converter) convert(raw *yaml.Node) (any, error) {
	n, err := followAlias(c.file, raw, c.onPath, "")
	if err != nil {
		return nil, err
	}
	if c.budget--; c.budget < 0 {
		return nil, errAt(Pos{c.file, n.Line, n.Column}, "", ErrSyntax, ": value expands to more than %d nodes", maxValueNodes)
	}
	switch n.Kind {
	case yaml.MappingNode:
		return c.mapping(n)
	case yaml.SequenceNode:
		return c.sequence(n)
	case yaml.ScalarNode:
		return scalarValue(c.file, n)
	}
	return nil, errAt(Pos{c.file, n.Line, n.Column}, "", ErrSyntax, ": unsupported YAML node")
}

func (c *converter) mapping(n *yaml.Node) (any, error) {
	pairs, err := mappingPairs(c.file, n)
	if err != nil {
		return nil, err
	}
	c.onPath[n] = true
	defer delete(c.onPath, n)
	out := make(map[string]any, len(pairs))
	for _, kv := range pairs {
		v, err := c.convert(kv.at)
		if err != nil {
			return nil, err
		}
		out[scalarKey(kv.key)] = v
	}
	return out, nil
}

func (c *converter) sequence(n *yaml.Node) (any, error) {
	c.onPath[n] = true
	defer delete(c.onPath, n)
	out := make([]any, 0, len(n.Content))
	for _, item := range n.Content {
		v, err := c.convert(item)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func scalarKey(k *yaml.Node) string {
	if k.Tag == "!!null" {
		return "null"
	}
	return k.Value
}

// yaml11Bools are the plain scalars PyYAML (YAML 1.1) reads as booleans
// beyond YAML 1.2's true/false.
var yaml11Bools = map[string]bool{
	"yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

func scalarValue(file string, n *yaml.Node) (any, error) {
	switch {
	case n.Tag == "!!timestamp":
		return n.Value, nil
	case n.Tag == "!!str" && n.Style == 0:
		if b, ok := yaml11Bools[n.Value]; ok {
			return b, nil
		}
		return n.Value, nil
	case n.Tag == "!!str":
		return n.Value, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, errAt(Pos{file, n.Line, n.Column}, "", ErrSyntax, ": %v", err)
	}
	if f, ok := v.(float64); ok && (f != f || f > 1.7976931348623157e308 || f < -1.7976931348623157e308) {
		return n.Value, nil // NaN and infinities cannot be written as JSON
	}
	return v, nil
}
