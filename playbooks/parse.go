package playbooks

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"orch/playbooks/template"
)

// Load reads and parses a playbook file.
func Load(path string) (*Playbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading playbook: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a playbook. name is used in positions and to resolve
// relative paths. Every expression is compiled (and cached) here, so a
// malformed playbook is rejected before anything runs. Module names are
// checked against the registry by Run (and Validate).
func Parse(name string, data []byte) (*Playbook, error) {
	pb, err := parse(name, data)
	if err != nil {
		return nil, err
	}
	return pb, nil
}

// parse parses a playbook, going on after errors so that one pass finds
// every blocker: it returns what it could read and all the errors.
func parse(name string, data []byte) (*Playbook, error) {
	p := &parser{file: name, eng: template.New(), root: filepath.Dir(name), probs: &problems{}}
	p.rolesPath = rolesPath(p.root)
	plays, err := p.playbook(data)
	p.report(err)
	return &Playbook{Path: name, Dir: filepath.Dir(name), eng: p.eng, Plays: plays}, p.probs.err()
}

// problems collects the errors of one parse.
type problems struct {
	errs []error
	seen map[string]bool
}

// report records err (once: a role used twice reports its errors once).
func (p *parser) report(err error) {
	if err == nil {
		return
	}
	if p.probs == nil {
		p.probs = &problems{}
	}
	if p.probs.seen == nil {
		p.probs.seen = map[string]bool{}
	}
	if msg := err.Error(); !p.probs.seen[msg] {
		p.probs.seen[msg] = true
		p.probs.errs = append(p.probs.errs, err)
	}
}

// err returns the problems as one error (each on its own line), nil if none.
func (ps *problems) err() error {
	switch len(ps.errs) {
	case 0:
		return nil
	case 1:
		return ps.errs[0]
	}
	return errors.Join(ps.errs...)
}

// playbook parses a list of plays (and import_playbook entries).
func (p *parser) playbook(data []byte) ([]*Play, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, p.yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ParseError{Pos: Pos{File: p.file, Line: 1, Col: 1}, Err: errors.New("empty playbook: expected a list of plays")}
	}
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode {
		return nil, p.errf(root, "", "a playbook is a list of plays, got %s", kindName(root))
	}
	var plays []*Play
	for _, n := range root.Content {
		if imported, ok, err := p.importPlaybook(n); ok || err != nil {
			if err != nil {
				p.report(err)
				continue
			}
			plays = append(plays, imported...)
			continue
		}
		play, err := p.play(n)
		if err != nil {
			p.report(err)
			continue
		}
		plays = append(plays, play)
	}
	return plays, nil
}

// guardPlay applies import_playbook's when to every task of play, as
// Ansible does: each section becomes a block carrying the conditions.
func guardPlay(play *Play, when []string) {
	for _, l := range []*[]*Task{&play.PreTasks, &play.Tasks, &play.PostTasks} {
		if len(*l) > 0 {
			*l = []*Task{{Name: "import_playbook", When: when, Block: *l, Pos: play.Pos}}
		}
	}
}

type parser struct {
	file      string
	eng       *template.Engine
	root      string // the playbook's directory
	depth     int    // import/include nesting
	pc        *playCtx
	role      *roleUse // the role whose files are being read, if any
	rolesPath []string
	probs     *problems // shared by every parser of one Parse
	parent    *parser   // the parser of the including file, if any
}

// maxIncludeDepth bounds nested import_tasks/include_tasks/import_playbook.
const maxIncludeDepth = 32

var yamlLine = regexp.MustCompile(`line (\d+)`)

func (p *parser) yamlError(err error) error {
	line := 1
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return &ParseError{Pos: Pos{File: p.file, Line: line, Col: 1}, Err: err}
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line, Col: n.Column} }

func (p *parser) errf(n *yaml.Node, key, format string, args ...any) error {
	return &ParseError{Pos: p.pos(n), Key: key, Err: fmt.Errorf(format, args...)}
}

func (p *parser) wrap(n *yaml.Node, key string, err error) error {
	return &ParseError{Pos: p.pos(n), Key: key, Err: err}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("scalar %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

// pairs iterates a mapping's keys and values, rejecting duplicate and non-string keys.
func (p *parser) pairs(n *yaml.Node, what string, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "", "%s must be a mapping, got %s", what, kindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.errf(k, "", "%s keys must be strings, got %s", what, kindName(k))
		}
		if seen[k.Value] {
			return p.errf(k, k.Value, "duplicate key in %s", what)
		}
		seen[k.Value] = true
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func (p *parser) str(n *yaml.Node, key string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", p.errf(n, key, "expected a string, got %s", kindName(n))
	}
	return n.Value, p.checkTemplates(n, key)
}

func (p *parser) boolean(n *yaml.Node, key string) (bool, error) {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "true", "yes", "on":
			return true, nil
		case "false", "no", "off":
			return false, nil
		}
	}
	return false, p.errf(n, key, "expected true or false, got %s", kindName(n))
}

func (p *parser) strList(n *yaml.Node, key string) ([]string, error) {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		s, err := p.str(n, key)
		return []string{s}, err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, key, "expected a string or a list of strings, got %s", kindName(n))
	}
	var out []string
	for _, e := range n.Content {
		s, err := p.str(e, key)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// tags accepts a list, a string, or a comma-separated string.
func (p *parser) tags(n *yaml.Node, key string) ([]string, error) {
	l, err := p.strList(n, key)
	var out []string
	for _, s := range l {
		for _, t := range strings.Split(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out, err
}

// conds reads when/changed_when/failed_when/until: bare expressions, booleans or lists.
func (p *parser) conds(n *yaml.Node, key string) ([]string, error) {
	nodes := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		nodes = n.Content
	}
	var out []string
	for _, e := range nodes {
		if e.Kind != yaml.ScalarNode || isNull(e) {
			return nil, p.errf(e, key, "expected an expression, got %s", kindName(e))
		}
		src := strings.TrimSpace(e.Value)
		var err error
		if template.IsTemplate(src) {
			err = p.eng.CheckTemplate(src)
		} else {
			err = p.eng.Check(src)
		}
		if err != nil {
			return nil, p.wrap(e, key, err)
		}
		out = append(out, src)
	}
	return out, nil
}

func (p *parser) value(n *yaml.Node, key string) (any, error) {
	if err := p.checkTemplates(n, key); err != nil {
		return nil, err
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, p.wrap(n, key, err)
	}
	return normalize(v), nil
}

func (p *parser) mapping(n *yaml.Node, key string) (map[string]any, error) {
	if isNull(n) {
		return map[string]any{}, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, key, "expected a mapping, got %s", kindName(n))
	}
	v, err := p.value(n, key)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, p.errf(n, key, "mapping keys must be strings")
	}
	return m, nil
}

// checkTemplates compiles every `{{ }}` string under n, with its position.
func (p *parser) checkTemplates(n *yaml.Node, key string) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!str" && (template.IsTemplate(n.Value) || strings.Contains(n.Value, "{%")) {
			if err := p.eng.CheckTemplate(n.Value); err != nil {
				return p.wrap(n, key, err)
			}
		}
	case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if err := p.checkTemplates(c, key); err != nil {
				return err
			}
		}
	}
	return nil
}

// normalize converts YAML's map[any]any (non-string keys) to map[string]any.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

func (p *parser) integer(n *yaml.Node, key string) (int, error) {
	var i int
	if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
		return 0, p.errf(n, key, "expected an integer")
	}
	return i, nil
}

// sub returns a parser for an imported file, refusing deep nesting.
func (p *parser) sub(n *yaml.Node, key, file string) (*parser, []byte, error) {
	if p.depth >= maxIncludeDepth {
		return nil, nil, p.errf(n, key, "imports nested deeper than %d", maxIncludeDepth)
	}
	path := p.resolve(file)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, p.wrap(n, key, err)
	}
	return &parser{file: path, eng: p.eng, root: p.root, depth: p.depth + 1, pc: p.pc, role: p.role, rolesPath: p.rolesPath, probs: p.probs, parent: p}, data, nil
}

// resolve finds an imported file as Ansible does: relative to the importing
// file's directory, then to the playbook's.
func (p *parser) resolve(file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	for _, dir := range []string{filepath.Dir(p.file), filepath.Join(filepath.Dir(p.file), "tasks"), p.root} {
		cand := filepath.Join(dir, file)
		if _, err := os.Stat(cand); err == nil {
			return cand
		}
	}
	return filepath.Join(filepath.Dir(p.file), file)
}

// importPlaybook parses `- import_playbook: other.yml` (with optional name,
// vars and tags applied to its plays); ok is false for an ordinary play.
func (p *parser) importPlaybook(n *yaml.Node) ([]*Play, bool, error) {
	if n.Kind != yaml.MappingNode {
		return nil, false, nil
	}
	var fileNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k == "import_playbook" || k == "ansible.builtin.import_playbook" {
			fileNode = n.Content[i+1]
		}
	}
	if fileNode == nil {
		return nil, false, nil
	}
	var file string
	var vars map[string]any
	var tags, when []string
	err := p.pairs(n, "import_playbook", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "import_playbook", "ansible.builtin.import_playbook":
			file, err = p.str(v, key)
			if err == nil && strings.Contains(file, "{{") {
				err = p.errf(v, key, "a templated playbook name is not supported")
			}
		case "name":
		case "vars":
			vars, err = p.mapping(v, key)
		case "tags":
			tags, err = p.tags(v, key)
		case "when":
			when, err = p.conds(v, key)
		default:
			err = p.errf(k, key, "unsupported with import_playbook (name, vars, tags, when)")
		}
		return err
	})
	if err != nil {
		return nil, true, err
	}
	sp, data, err := p.sub(fileNode, "import_playbook", file)
	if err != nil {
		return nil, true, err
	}
	if dir := filepath.Dir(sp.file); dir != p.root {
		sp.rolesPath = append(rolesPath(dir), p.rolesPath...) // its roles/ first
	}
	plays, err := sp.playbook(data)
	if err != nil {
		return nil, true, err
	}
	for _, play := range plays {
		play.Tags = append(append([]string{}, tags...), play.Tags...)
		if len(when) > 0 {
			guardPlay(play, when)
		}
		if vars != nil {
			merged := maps.Clone(vars)
			maps.Copy(merged, play.Vars)
			play.Vars = merged
		}
	}
	return plays, true, nil
}
