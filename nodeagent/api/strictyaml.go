package api

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrSyntax marks a document that does not parse or does not fit its schema.
var ErrSyntax = errors.New("invalid document")

// PositionError names the file, line, column and field of a bad input.
type PositionError struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

func (e *PositionError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Unwrap lets callers test errors.Is(err, ErrSyntax).
func (e *PositionError) Unwrap() error { return ErrSyntax }

// DecodeStrict decodes YAML (or JSON) into out, rejecting unknown keys and wrongly shaped
// values with an error that names file:line:col and the dotted field path.
func DecodeStrict(file string, data []byte, out any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return syntaxError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if err := checkNode(file, root, reflect.TypeOf(out).Elem(), ""); err != nil {
		return err
	}
	if err := root.Decode(out); err != nil {
		return &PositionError{File: file, Line: root.Line, Column: root.Column, Msg: err.Error()}
	}
	return nil
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into a PositionError.
func syntaxError(file string, err error) error {
	msg := err.Error()
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(msg, "yaml: "), "line %d:", &line); scanErr == nil {
		rest := msg[strings.Index(msg, ":")+1:]
		rest = strings.TrimSpace(rest[strings.Index(rest, ":")+1:])
		return &PositionError{File: file, Line: line, Column: 1, Msg: rest}
	}
	return &PositionError{File: file, Line: 1, Column: 1, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

func checkNode(file string, n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	bad := func(format string, args ...any) error {
		return &PositionError{File: file, Line: n.Line, Column: n.Column, Field: path, Msg: fmt.Sprintf(format, args...)}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return bad("expected a mapping, found %s", kindName(n))
		}
		return checkStruct(file, n, t, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return bad("expected a mapping, found %s", kindName(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := checkNode(file, v, t.Elem(), join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return bad("expected a list, found %s", kindName(n))
		}
		for i, item := range n.Content {
			if err := checkNode(file, item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Interface:
		return nil
	default:
		if n.Kind != yaml.ScalarNode {
			return bad("expected a scalar value, found %s", kindName(n))
		}
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			return bad("%q is not a valid %s", n.Value, t.Kind())
		}
		return nil
	}
}

func checkStruct(file string, n *yaml.Node, t reflect.Type, path string) error {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			return &PositionError{File: file, Line: k.Line, Column: k.Column, Field: join(path, k.Value), Msg: "unknown key"}
		}
		if seen[k.Value] {
			return &PositionError{File: file, Line: k.Line, Column: k.Column, Field: join(path, k.Value), Msg: "duplicate key"}
		}
		seen[k.Value] = true
		if err := checkNode(file, v, ft, join(path, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}
