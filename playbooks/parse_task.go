package playbooks

import (
	"fmt"
	"maps"
	"strings"

	"gopkg.in/yaml.v3"
)

// metaActions are the supported `meta:` actions.
var metaActions = map[string]bool{"flush_handlers": true, "end_play": true, "end_host": true, "noop": true}

// ModuleName strips Ansible's collection prefixes: ansible.builtin.copy → copy.
func ModuleName(key string) string {
	for _, prefix := range []string{"ansible.builtin.", "ansible.legacy."} {
		if s, ok := strings.CutPrefix(key, prefix); ok {
			return s
		}
	}
	return key
}

func (p *parser) task(n *yaml.Node, handler bool) (*Task, error) {
	t := &Task{Pos: p.pos(n)}
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
	if t.Module == "import_tasks" || t.Module == "include_tasks" {
		return t, p.includeTasks(t, n, handler)
	}
	return t, p.checkMeta(t, n)
}

// includeTasks turns import_tasks/include_tasks into a block of the file's
// tasks: its when, tags and vars apply to each task, as Ansible's import
// does; a loop runs the block once per item (see playRun.runLoopBlock).
// The file is read at parse time, so its name cannot be templated.
func (p *parser) includeTasks(t *Task, n *yaml.Node, handler bool) error {
	key := t.Module
	file := ""
	if t.FreeForm != nil {
		file = strings.TrimSpace(*t.FreeForm)
	}
	for k, v := range t.Args {
		switch k {
		case "file", "_raw_params":
			file, _ = v.(string)
		case "apply":
			apply, _ := v.(map[string]any)
			for ak, av := range apply {
				if ak != "tags" {
					return p.errf(n, key, "apply: only tags are supported, not %q", ak)
				}
				switch tv := av.(type) {
				case string:
					t.Tags = append(t.Tags, tv)
				case []any:
					for _, x := range tv {
						t.Tags = append(t.Tags, fmt.Sprint(x))
					}
				}
			}
		default:
			return p.errf(n, key, "unknown argument %q (file, apply)", k)
		}
	}
	if file == "" {
		return p.errf(n, key, "needs a file name")
	}
	if strings.Contains(file, "{{") {
		return p.errf(n, key, "a templated file name is not supported (%s)", file)
	}
	sp, data, err := p.sub(n, key, file)
	if err != nil {
		return err
	}
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
		return p.errf(n, "meta", "unsupported meta action %q (flush_handlers, end_play, end_host, noop)", action)
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
	case "loop_control":
		err = p.loopControl(t, v)
	case "retries":
		t.Retries, err = p.value(v, key)
	case "delay":
		t.Delay, err = p.value(v, key)
	case "run_once":
		t.RunOnce, err = p.boolean(v, key)
	case "delegate_to":
		t.DelegateTo, err = p.str(v, key)
	case "ignore_errors":
		t.IgnoreErrors, err = p.boolean(v, key)
	case "notify":
		t.Notify, err = p.strList(v, key)
	case "listen":
		t.Listen, err = p.strList(v, key)
	case "tags":
		t.Tags, err = p.tags(v, key)
	case "become":
		var b bool
		b, err = p.boolean(v, key)
		t.Become = &b
	case "no_log":
		t.NoLog, err = p.boolean(v, key)
	case "vars":
		t.Vars, err = p.mapping(v, key)
	case "block", "rescue", "always":
		err = p.blockSection(t, key, v)
	default:
		return false, nil
	}
	return true, err
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
		default:
			err = p.errf(k, key, "unknown loop_control keyword (loop_var, index_var, label)")
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
