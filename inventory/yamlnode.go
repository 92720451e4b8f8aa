package inventory

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// maxValueNodes bounds how many YAML nodes one variable may expand to
// through aliases (a "billion laughs" document fails instead of eating
// memory).
const maxValueNodes = 1 << 20

type keyVal struct{ key, val *yaml.Node }

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
// override them. A key given twice is an error (PyYAML would only warn).
func mappingPairs(file string, n *yaml.Node) ([]keyVal, error) {
	n = resolveAlias(n)
	var merged, explicit []keyVal
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			m, err := mergeSources(file, v)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		k = resolveAlias(k)
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(Pos{file, k.Line, k.Column}, "", ErrSyntax, ": mapping keys must be scalars, got %s", kindName(k))
		}
		if prev, dup := seen[k.Value]; dup {
			return nil, errAt(Pos{file, k.Line, k.Column}, "", ErrSyntax, ": key %q already defined at line %d", k.Value, prev.Line)
		}
		seen[k.Value] = k
		explicit = append(explicit, keyVal{k, v})
	}
	var out []keyVal
	mergedSeen := map[string]bool{}
	for _, kv := range merged {
		if seen[kv.key.Value] == nil && !mergedSeen[kv.key.Value] {
			mergedSeen[kv.key.Value] = true
			out = append(out, kv)
		}
	}
	return append(out, explicit...), nil
}

// mergeSources returns the pairs a merge key brings in: one mapping or a
// list of mappings (earlier ones win, as YAML specifies).
func mergeSources(file string, v *yaml.Node) ([]keyVal, error) {
	var srcs []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		srcs = []*yaml.Node{v}
	case yaml.SequenceNode:
		srcs = v.Content
	default:
		return nil, errAt(Pos{file, v.Line, v.Column}, "", ErrSyntax, ": merge key << needs a mapping or a list of mappings")
	}
	var out []keyVal
	for _, s := range srcs {
		s = resolveAlias(s)
		if s.Kind != yaml.MappingNode {
			return nil, errAt(Pos{file, s.Line, s.Column}, "", ErrSyntax, ": merge key << needs a mapping or a list of mappings")
		}
		pairs, err := mappingPairs(file, s)
		if err != nil {
			return nil, err
		}
		out = append(out, pairs...)
	}
	return out, nil
}

// nodeValue converts a YAML node into plain Go values: map[string]any,
// []any, string, int, float64, bool or nil. Like Ansible's (YAML 1.1)
// loader, unquoted yes/no/on/off are booleans and timestamps stay strings.
func nodeValue(file string, n *yaml.Node) (any, error) {
	budget := maxValueNodes
	return convertNode(file, n, &budget)
}

func convertNode(file string, n *yaml.Node, budget *int) (any, error) {
	n = resolveAlias(n)
	if *budget--; *budget < 0 {
		return nil, errAt(Pos{file, n.Line, n.Column}, "", ErrSyntax, ": value expands to more than %d nodes", maxValueNodes)
	}
	switch n.Kind {
	case yaml.MappingNode:
		pairs, err := mappingPairs(file, n)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(pairs))
		for _, kv := range pairs {
			v, err := convertNode(file, kv.val, budget)
			if err != nil {
				return nil, err
			}
			out[scalarKey(kv.key)] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convertNode(file, c, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		return scalarValue(file, n)
	}
	return nil, errAt(Pos{file, n.Line, n.Column}, "", ErrSyntax, ": unsupported YAML node")
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
