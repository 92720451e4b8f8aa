package playbooks

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// metaActions are the supported `meta:` actions.
var metaActions = map[string]bool{
	"flush_handlers": true, "end_play": true, "end_host": true, "end_batch": true,
	"noop": true, "reset_connection": true, "clear_facts": true, "clear_host_errors": true,
	"refresh_inventory": true,
}

// ModuleName strips Ansible's collection prefixes: ansible.builtin.copy → copy
// (also ansible.legacy.X and ansible.posix/community.general's generic modules).
func ModuleName(key string) string {
	for _, prefix := range []string{"ansible.builtin.", "ansible.legacy.", "ansible.posix.", "community.general."} {
		if s, ok := strings.CutPrefix(key, prefix); ok {
			return s
		}
	}
	return key
}

func (p *parser) task(n *yaml.Node, handler bool) (*Task, error) {
	t := &Task{Pos: p.pos(n), role: p.role}
	var extraArgs map[string]any
	var rescueNode, alwaysNode *yaml.Node
	err := p.pairs(n, "a task", func(key string, k, v *yaml.Node) error {
		if key == "rescue" {
			rescueNode = k
		}
		if key == "always" {
			alwaysNode = k
		}
		if key == "args" {
			var err error
			extraArgs, err = p.mapping(v, key)
			return err
		}
		if key == "action" || key == "local_action" {
			if key == "local_action" {
				t.DelegateTo = "localhost"
			}
			return p.action(t, key, k, v)
		}
		if key == "listen" && !handler {
			return p.errf(k, key, "listen is only valid in handlers")
		}
		if ok, err := p.taskKeyword(t, key, v); ok || err != nil {
			return err
		}
		return p.module(t, key, k, v)
	})
	if err != nil {
		return nil, err
	}
	if t.Block == nil && (rescueNode != nil || alwaysNode != nil) {
		return nil, p.errf(firstNonNil(rescueNode, alwaysNode), "", "rescue and always need a block")
	}
	if t.Block != nil && t.Module != "" {
		return nil, p.errf(n, t.Module, "a block cannot also run a module")
	}
	if t.Block == nil && t.Module == "" {
		return nil, p.errf(n, "", "task %q has no module", t.Name)
	}
	if extraArgs != nil {
		t.Args = mergeArgs(extraArgs, t.Args)
	}
	switch t.Module {
	case "import_tasks", "include_tasks", "include":
		return t, p.includeTasks(t, n, handler)
	case "import_role", "include_role":
		return t, p.includeRole(t, n)
	}
	return t, p.checkMeta(t, n)
}

// includeTasks turns import_tasks/include_tasks into a block of the file's
// tasks: its when, tags and vars apply to each task, as Ansible's import
// does; a loop runs the block once per item (see playRun.runLoopBlock).
// The file is read at parse time, so its name cannot be templated.
func (p *parser) includeTasks(t *Task, n *yaml.Node, handler bool) error {
	key := t.Module
	if key == "include_tasks" {
		t.include = key
	}
	file := ""
	if t.FreeForm != nil {
		file = strings.TrimSpace(*t.FreeForm)
	}
	if t.FreeForm != nil && key == "include" {
		// the old `include: file.yml k=v` form: the words after the file are vars
		fields := strings.Fields(file)
		if len(fields) > 1 {
			file = fields[0]
			kv, err := ParseKV(strings.Join(fields[1:], " "))
			if err != nil {
				return p.wrap(n, key, err)
			}
			t.Vars = mergeArgs(kv, t.Vars)
		}
	}
	for k, v := range t.Args {
		switch k {
		case "file", "_raw_params":
			file, _ = v.(string)
		case "apply":
			if err := p.applyKeywords(t, n, key, v); err != nil {
				return err
			}
		default:
			if key != "include" {
				return p.errf(n, key, "unknown argument %q (file, apply)", k)
			}
			if t.Vars == nil {
				t.Vars = map[string]any{}
			}
			t.Vars[k] = v
		}
	}
	if file == "" {
		return p.errf(n, key, "needs a file name")
	}
	if strings.Contains(file, "{{") || key == "include_tasks" && p.including(file) {
		if err := p.eng.CheckTemplate(file); err != nil {
			return p.wrap(n, key, err)
		}
		// read when the task runs, once the name can be templated for each host
		sp := *p
		t.dynInclude = &dynInclude{file: file, parser: &sp, handler: handler}
		if t.Name == "" {
			t.Name = key + " " + file
		}
		t.Block, t.Module, t.FreeForm, t.Args = []*Task{}, "", nil, nil
		return nil
	}
	if p.role != nil && !filepath.IsAbs(file) {
		if cand := filepath.Join(p.role.role.Dir, "tasks", file); fileExists(cand) {
			file = cand
		}
	}
	sp, data, err := p.sub(n, key, file)
	if err != nil {
		return err
	}
	t.includeFile = sp.file
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return sp.yamlError(err)
	}
	tasks := []*Task{}
	if len(doc.Content) > 0 {
		if tasks, err = sp.tasks(doc.Content[0], key, handler); err != nil {
			return err
		}
	}
	if t.Name == "" {
		t.Name = key + " " + file
	}
	t.Block, t.Module, t.FreeForm, t.Args = tasks, "", nil, nil
	return nil
}

// applyKeywords applies include_tasks/include_role's `apply:` (keywords for
// every included task) to the block t.
func (p *parser) applyKeywords(t *Task, n *yaml.Node, key string, v any) error {
	apply, ok := v.(map[string]any)
	if !ok {
		return p.errf(n, key, "apply must be a mapping of task keywords")
	}
	var doc yaml.Node
	if err := doc.Encode(apply); err != nil {
		return p.wrap(n, key, err)
	}
	return p.pairs(&doc, "apply", func(k string, kn, vn *yaml.Node) error {
		vn.Line, vn.Column, kn.Line, kn.Column = n.Line, n.Column, n.Line, n.Column
		tags := t.Tags
		ok, err := p.taskKeyword(t, k, vn)
		if k == "tags" {
			t.Tags = append(tags, t.Tags...)
		}
		if !ok && err == nil {
			err = p.errf(n, key, "apply: %q is not a task keyword", k)
		}
		return err
	})
}

// including reports whether file is one of the files being read (an
// include_tasks that includes itself, conditionally): such an include is
// read when it runs, as Ansible's dynamic includes are.
func (p *parser) including(file string) bool {
	if p.role != nil && !filepath.IsAbs(file) {
		if cand := filepath.Join(p.role.role.Dir, "tasks", file); fileExists(cand) {
			file = cand
		}
	}
	path, _ := filepath.Abs(p.resolve(file))
	for q := p; q != nil; q = q.parent {
		if f, _ := filepath.Abs(q.file); f == path {
			return true
		}
	}
	return p.depth >= maxIncludeDepth-1
}

func firstNonNil(ns ...*yaml.Node) *yaml.Node {
	for _, n := range ns {
		if n != nil {
			return n
		}
	}
	return nil
}

func mergeArgs(low, high map[string]any) map[string]any {
	out := maps.Clone(low)
	if out == nil {
		out = make(map[string]any, len(high))
	}
	maps.Copy(out, high)
	return out
}

func (p *parser) checkMeta(t *Task, n *yaml.Node) error {
	if t.Module != "meta" {
		return nil
	}
	action := ""
	if t.FreeForm != nil {
		action = *t.FreeForm
	} else if s, ok := t.Args["action"].(string); ok {
		action = s
	}
	if !metaActions[action] {
		return p.errf(n, "meta", "unsupported meta action %q (%s)", action, strings.Join(sortedKeys(metaActions), ", "))
	}
	t.FreeForm = &action
	t.Args = nil
	return nil
}

// taskKeyword parses key if it is a task keyword, reporting whether it was one.
func (p *parser) taskKeyword(t *Task, key string, v *yaml.Node) (bool, error) {
	var err error
	switch key {
	case "name":
		t.Name, err = p.str(v, key)
	case "when":
		t.When, err = p.conds(v, key)
	case "changed_when":
		t.ChangedWhen, err = p.conds(v, key)
	case "failed_when":
		t.FailedWhen, err = p.conds(v, key)
	case "until":
		var c []string
		if c, err = p.conds(v, key); err == nil {
			t.Until = strings.Join(c, " and ")
		}
	case "register":
		t.Register, err = p.identifier(v, key)
	case "loop", "with_items":
		if t.Loop != nil {
			return true, p.errf(v, key, "a task has only one loop")
		}
		t.LoopFlatten = key == "with_items"
		t.Loop, err = p.value(v, key)
	case "remote_user", "become_user", "become_method", "connection":
		err = p.connKeyword(&t.Conn, key, v)
	case "environment":
		t.Environment, err = p.value(v, key)
	case "throttle":
		if !p.dynamic(v, key, &t.dyn, &err) {
			t.Throttle, err = p.integer(v, key)
		}
	case "check_mode":
		if !p.dynamic(v, key, &t.dyn, &err) {
			t.CheckMode, err = p.optBool(v, key)
		}
	case "diff":
		if !p.dynamic(v, key, &t.dyn, &err) {
			t.Diff, err = p.optBool(v, key)
		}
	case "async":
		t.Async, err = p.value(v, key)
	case "poll":
		t.Poll, err = p.value(v, key)
	case "module_defaults":
		t.ModuleDefaults, err = p.moduleDefaults(v, key)
	case "any_errors_fatal":
		if !p.dynamic(v, key, &t.dyn, &err) {
			t.AnyErrorsFatal, err = p.optBool(v, key)
		}
	case "ignore_unreachable":
		t.IgnoreUnreachable, err = p.boolean(v, key)
	case "delegate_facts":
		t.DelegateFacts, err = p.boolean(v, key)
	case "timeout":
		if !p.dynamic(v, key, &t.dyn, &err) {
			t.Timeout, err = p.integer(v, key)
		}
	case "collections", "debugger", "become_flags", "become_exe", "port", "become_pass", "sudo", "sudo_user", "su", "su_user":
		_, err = p.value(v, key) // accepted; orch has no use for them
	case "loop_control":
		err = p.loopControl(t, v)
	case "retries":
		t.Retries, err = p.value(v, key)
	case "delay":
		t.Delay, err = p.value(v, key)
	case "run_once":
		if !p.dynamic(v, key, &t.dyn, &err) {
			t.RunOnce, err = p.boolean(v, key)
		}
	case "delegate_to":
		t.DelegateTo, err = p.str(v, key)
	case "ignore_errors":
		if !p.dynamic(v, key, &t.dyn, &err) {
			t.IgnoreErrors, err = p.boolean(v, key)
		}
	case "notify":
		t.Notify, err = p.strList(v, key)
	case "listen":
		t.Listen, err = p.strList(v, key)
	case "tags":
		t.Tags, err = p.tags(v, key)
	case "become":
		if !p.dynamic(v, key, &t.dyn, &err) {
			var b bool
			b, err = p.boolean(v, key)
			t.Become = &b
		}
	case "no_log":
		if !p.dynamic(v, key, &t.dyn, &err) {
			t.NoLog, err = p.boolean(v, key)
		} else {
			t.NoLog = true // a templated no_log hides output: the safe reading
		}
	case "vars":
		t.Vars, err = p.varsMapping(v, key)
	case "block", "rescue", "always":
		err = p.blockSection(t, key, v)
	default:
		if lookup, ok := strings.CutPrefix(key, "with_"); ok && lookupLoops[lookup] {
			if t.Loop != nil {
				return true, p.errf(v, key, "a task has only one loop")
			}
			t.LoopWith = lookup
			t.Loop, err = p.value(v, key)
			return true, err
		}
		return false, nil
	}
	return true, err
}

// lookupLoops are the with_X loops (the lookup X gives the items).
var lookupLoops = map[string]bool{
	"list": true, "dict": true, "fileglob": true, "sequence": true, "together": true, "nested": true,
	"subelements": true, "indexed_items": true, "flattened": true, "lines": true, "first_found": true,
	"random_choice": true, "inventory_hostnames": true, "cartesian": true, "file": true, "env": true,
	"template": true, "pipe": true, "vars": true, "password": true, "community.general.filetree": true,
	"filetree": true, "ini": true, "csvfile": true,
}

// varsMapping reads vars: a mapping, or the older list of mappings.
func (p *parser) varsMapping(v *yaml.Node, key string) (map[string]any, error) {
	if v.Kind != yaml.SequenceNode {
		return p.mapping(v, key)
	}
	out := map[string]any{}
	for _, e := range v.Content {
		m, err := p.mapping(e, key)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, m)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// dynamic records a templated keyword value (`ignore_errors: "{{ x }}"`) in
// dyn, evaluated when the task runs, and reports whether it was one.
func (p *parser) dynamic(v *yaml.Node, key string, dyn *map[string]string, err *error) bool {
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || !strings.Contains(v.Value, "{{") {
		return false
	}
	if *err = p.checkTemplates(v, key); *err == nil {
		if *dyn == nil {
			*dyn = map[string]string{}
		}
		(*dyn)[key] = v.Value
	}
	return true
}

func (p *parser) optBool(v *yaml.Node, key string) (*bool, error) {
	if v.Kind == yaml.ScalarNode && strings.Contains(v.Value, "{{") {
		return nil, nil // a templated value: not supported, treated as unset
	}
	b, err := p.boolean(v, key)
	return &b, err
}

func (p *parser) connKeyword(c *ConnKeywords, key string, v *yaml.Node) error {
	s, err := p.str(v, key)
	if err != nil {
		return err
	}
	switch key {
	case "remote_user":
		c.RemoteUser = s
	case "become_user":
		c.BecomeUser = s
	case "become_method":
		if !strings.Contains(s, "{{") && s != "sudo" && s != "su" && s != "ansible.builtin.sudo" && s != "ansible.builtin.su" {
			return p.errf(v, key, "become_method %q is not supported (sudo, su)", s)
		}
		c.BecomeMethod = strings.TrimPrefix(s, "ansible.builtin.")
	case "connection":
		switch s = strings.TrimPrefix(s, "ansible.builtin."); s {
		case "local", "ssh", "smart", "paramiko", "paramiko_ssh":
		default:
			// winrm, docker, …: valid for Ansible; connecting fails (ErrConnection)
		}
		c.Connection = s
	}
	return nil
}

// moduleDefaults reads module_defaults: module (or group/NAME) → arguments.
func (p *parser) moduleDefaults(v *yaml.Node, key string) (map[string]map[string]any, error) {
	nodes := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		nodes = v.Content // a list of mappings, as Ansible also accepts
	}
	out := map[string]map[string]any{}
	for _, n := range nodes {
		err := p.pairs(n, key, func(name string, k, a *yaml.Node) error {
			args, err := p.mapping(a, key)
			if err != nil {
				return err
			}
			if g, ok := strings.CutPrefix(name, "group/"); ok {
				name = "group/" + ModuleName(g)
			} else {
				name = ModuleName(name)
			}
			out[name] = mergeArgs(out[name], args)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *parser) blockSection(t *Task, key string, v *yaml.Node) error {
	l, err := p.tasks(v, key, false)
	switch key {
	case "block":
		t.Block = l
	case "rescue":
		t.Rescue = l
	case "always":
		t.Always = l
	}
	return err
}

func (p *parser) identifier(v *yaml.Node, key string) (string, error) {
	s, err := p.str(v, key)
	if err != nil {
		return "", err
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return "", p.errf(v, key, "%q is not a valid variable name", s)
		}
	}
	if s == "" {
		return "", p.errf(v, key, "empty variable name")
	}
	return s, nil
}

func (p *parser) loopControl(t *Task, v *yaml.Node) error {
	return p.pairs(v, "loop_control", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "loop_var":
			t.LoopVar, err = p.identifier(v, key)
		case "index_var":
			t.IndexVar, err = p.identifier(v, key)
		case "label":
			t.LoopLabel, err = p.str(v, key)
		case "pause", "extended", "extended_allitems", "break_when":
			_, err = p.value(v, key)
		default:
			err = p.errf(k, key, "unknown loop_control keyword (loop_var, index_var, label, pause, extended)")
		}
		return err
	})
}

// module records key as the task's module; a second one is an error, as
// is a key that is neither a keyword nor a module (found out by Validate).
func (p *parser) module(t *Task, key string, k, v *yaml.Node) error {
	name := ModuleName(key)
	if t.Module != "" {
		return p.errf(k, key, "unknown task keyword, or a second module in a task that already runs %q", t.Module)
	}
	t.Module, t.ModulePos = name, p.pos(k)
	switch {
	case isNull(v):
		t.Args = map[string]any{}
	case v.Kind == yaml.ScalarNode:
		s, err := p.str(v, key)
		if err != nil {
			return err
		}
		t.FreeForm = &s
	case v.Kind == yaml.MappingNode:
		args, err := p.mapping(v, key)
		if err != nil {
			return err
		}
		t.Args = args
	default:
		return p.errf(v, key, "module arguments must be a mapping or a string, got %s", kindName(v))
	}
	return nil
}

// action parses the old `action: module args` / `action: {module: m, ...}`
// form (and local_action, which also delegates to localhost).
func (p *parser) action(t *Task, key string, k, v *yaml.Node) error {
	switch v.Kind {
	case yaml.ScalarNode:
		s, err := p.str(v, key)
		if err != nil {
			return err
		}
		name, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
		if name == "" {
			return p.errf(v, key, "no module named")
		}
		if strings.HasPrefix(name, "{{") {
			// `action: "{{ packager }} pkg=x"`: the module is known once templated
			node := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.TrimSpace(s), Line: v.Line, Column: v.Column}
			return p.module(t, templatedActionModule, k, node)
		}
		rest = strings.TrimSpace(rest)
		node := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: rest, Line: v.Line, Column: v.Column}
		if rest == "" {
			node = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: v.Line, Column: v.Column}
		}
		return p.module(t, name, k, node)
	case yaml.MappingNode:
		args, err := p.mapping(v, key)
		if err != nil {
			return err
		}
		name, ok := args["module"].(string)
		if !ok || name == "" {
			return p.errf(v, key, "the mapping form of %s needs module: NAME", key)
		}
		delete(args, "module")
		if err := p.module(t, name, k, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}); err != nil {
			return err
		}
		t.Args = args
		return nil
	}
	return p.errf(v, key, "expected a string or a mapping, got %s", kindName(v))
}
