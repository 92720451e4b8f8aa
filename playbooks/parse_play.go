package playbooks

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func (p *parser) play(n *yaml.Node) (*Play, error) {
	play := &Play{Pos: p.pos(n)}
	hasHosts := false
	pp := *p
	pp.pc = &playCtx{play: play, seen: map[string]bool{}, handlers: map[string]bool{}}
	p = &pp
	var roles []*Task
	err := p.pairs(n, "a play", func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "name":
			play.Name, err = p.str(v, key)
		case "hosts":
			hasHosts = true
			play.Hosts, err = p.hostPattern(v, key)
		case "serial":
			if !p.dynamic(v, key, &play.dyn, &err) {
				play.Serial, err = p.serial(v, key)
			}
		case "max_fail_percentage":
			play.MaxFailPercentage, err = p.percentage(v, key)
		case "any_errors_fatal":
			if !p.dynamic(v, key, &play.dyn, &err) {
				play.AnyErrorsFatal, err = p.boolean(v, key)
			}
		case "gather_facts":
			var on bool
			if p.dynamic(v, key, &play.dyn, &err) {
				on = true // decided when the play starts
				play.GatherFacts = &on
			} else if on, err = p.boolean(v, key); err == nil {
				play.GatherFacts = &on
			}
		case "gather_subset":
			play.GatherSubset, err = p.strList(v, key)
		case "gather_timeout":
			play.GatherTimeout, err = p.integer(v, key)
		case "become":
			if !p.dynamic(v, key, &play.dyn, &err) {
				play.Become, err = p.boolean(v, key)
			}
		case "vars":
			play.Vars, err = p.varsMapping(v, key)
		case "vars_files":
			play.VarsFiles, err = p.varsFiles(v, key)
		case "tags":
			play.Tags, err = p.tags(v, key)
		case "pre_tasks":
			play.PreTasks, err = p.tasks(v, key, false)
		case "tasks":
			play.Tasks, err = p.tasks(v, key, false)
		case "post_tasks":
			play.PostTasks, err = p.tasks(v, key, false)
		case "handlers":
			play.Handlers, err = p.tasks(v, key, true)
		case "roles":
			roles, err = p.roles(v)
		case "remote_user", "become_user", "become_method", "connection":
			err = p.connKeyword(&play.Conn, key, v)
		case "user":
			err = p.connKeyword(&play.Conn, "remote_user", v)
		case "environment":
			play.Environment, err = p.value(v, key)
		case "strategy":
			play.Strategy, err = p.str(v, key)
			if s := strings.TrimPrefix(play.Strategy, "ansible.builtin."); err == nil && s != "linear" && s != "free" && !strings.Contains(s, "{{") {
				err = p.errf(v, key, "strategy %q is not supported (linear, free)", play.Strategy)
			}
			play.Strategy = strings.TrimPrefix(play.Strategy, "ansible.builtin.")
		case "order":
			play.Order, err = p.str(v, key)
			switch play.Order {
			case "inventory", "reverse_inventory", "sorted", "reverse_sorted", "shuffle":
			default:
				err = p.errf(v, key, "order %q is not one of inventory, reverse_inventory, sorted, reverse_sorted, shuffle", play.Order)
			}
		case "module_defaults":
			play.ModuleDefaults, err = p.moduleDefaults(v, key)
		case "check_mode":
			if !p.dynamic(v, key, &play.dyn, &err) {
				play.CheckMode, err = p.optBool(v, key)
			}
		case "diff":
			if !p.dynamic(v, key, &play.dyn, &err) {
				play.Diff, err = p.optBool(v, key)
			}
		case "vars_prompt":
			play.Prompts, play.VarsPrompt, err = p.varsPrompt(v, key)
		case "ignore_unreachable", "ignore_errors", "timeout", "no_log", "run_once", "throttle":
			_, err = p.taskKeyword(&play.keywords, key, v) // inherited by every task
		case "force_handlers":
			play.ForceHandlers, err = p.boolean(v, key)
		case "collections", "debugger", "fact_path", "become_flags", "become_exe", "port", "sudo", "sudo_user":
			_, err = p.value(v, key) // accepted; orch has no use for them
		case "import_playbook", "include", "import_tasks", "include_tasks":
			err = p.errf(k, key, "%s is not a play keyword: put it in a task list (or import_playbook as a list item of its own)", key)
		default:
			err = p.errf(k, key, "unknown play keyword")
		}
		p.report(err) // go on: one pass reports every blocker
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(roles) > 0 {
		play.Tasks = append(roles, play.Tasks...)
	}
	if !hasHosts {
		return nil, p.errf(n, "hosts", "a play needs hosts")
	}
	return play, p.checkNotify(play)
}

// varsFiles reads vars_files: file names, or lists of names of which the
// first that exists is read (Ansible's fallback form), kept as "a|b|c".
func (p *parser) varsFiles(v *yaml.Node, key string) ([]string, error) {
	if v.Kind != yaml.SequenceNode {
		return p.strList(v, key)
	}
	var out []string
	for _, e := range v.Content {
		l, err := p.strList(e, key)
		if err != nil {
			return nil, err
		}
		out = append(out, strings.Join(l, "\x00"))
	}
	return out, nil
}

func (p *parser) hostPattern(n *yaml.Node, key string) (string, error) {
	if n.Kind == yaml.SequenceNode {
		l, err := p.strList(n, key)
		return strings.Join(l, ":"), err
	}
	s, err := p.str(n, key)
	if err == nil && strings.TrimSpace(s) == "" {
		err = p.errf(n, key, "empty host pattern")
	}
	return s, err
}

// serial accepts a number, "N%", or a list of those.
func (p *parser) serial(n *yaml.Node, key string) ([]any, error) {
	nodes := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		nodes = n.Content
		if len(nodes) == 0 {
			return nil, p.errf(n, key, "empty serial list")
		}
	}
	var out []any
	for _, e := range nodes {
		v, err := parseSerial(e)
		if err != nil {
			return nil, p.wrap(e, key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

var errSerial = errors.New(`serial must be a non-negative number, a percentage like "30%", or a list of those`)

func parseSerial(n *yaml.Node) (any, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return nil, errSerial
	}
	s := strings.TrimSpace(n.Value)
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || f < 0 || f > 100 {
			return nil, fmt.Errorf("%w: %q", errSerial, s)
		}
		return s, nil
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 {
		return nil, fmt.Errorf("%w: %q", errSerial, s)
	}
	return i, nil
}

func (p *parser) percentage(n *yaml.Node, key string) (*float64, error) {
	if n.Kind == yaml.ScalarNode {
		f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"), 64)
		if err == nil && f >= 0 && f <= 100 {
			return &f, nil
		}
	}
	return nil, p.errf(n, key, "expected a percentage between 0 and 100, got %s", kindName(n))
}

func (p *parser) tasks(n *yaml.Node, key string, handlers bool) ([]*Task, error) {
	if isNull(n) {
		return []*Task{}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, key, "expected a list of tasks, got %s", kindName(n))
	}
	out := []*Task{}
	for _, e := range n.Content {
		t, err := p.task(e, handlers)
		if err != nil {
			p.report(err) // go on with the next task: one pass reports every blocker
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// checkNotify verifies that every static notify names a handler or topic.
func (p *parser) checkNotify(play *Play) error {
	known := map[string]bool{}
	for _, h := range play.Handlers {
		known[h.Name] = true
		for _, l := range h.Listen {
			known[l] = true
		}
	}
	var check func([]*Task) error
	check = func(tasks []*Task) error {
		for _, t := range tasks {
			for _, n := range t.Notify {
				if !known[n] && !strings.Contains(n, "{{") {
					return &ParseError{Pos: t.Pos, Key: "notify", Err: fmt.Errorf("no handler named or listening to %q", n)}
				}
			}
			for _, l := range [][]*Task{t.Block, t.Rescue, t.Always} {
				if err := check(l); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, l := range [][]*Task{play.PreTasks, play.Tasks, play.PostTasks, play.Handlers} {
		if err := check(l); err != nil {
			return err
		}
	}
	return nil
}
