package playbooks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"orch/playbooks/template"
)

// dynInclude is an include_tasks whose file name is a template
// (`include_tasks: "setup-{{ ansible_os_family }}.yml"`): the name is
// templated for each host when the task runs, each file is read (once per
// run) and its tasks run as a block on the hosts that named it. Its `when`
// is evaluated once, at the include, as Ansible does for dynamic includes.
type dynInclude struct {
	file    string
	parser  *parser // the including file's parser: role, directories
	handler bool
	// role is set for include_role with a templated name (file is the name).
	role *roleSpec
	node *yaml.Node
}

// runDynInclude resolves a dynamic include per host and runs the files.
func (p *playRun) runDynInclude(ctx context.Context, b *Task, hosts []*hostState, in *inherit) {
	hv := p.hostvarsSnapshot()
	groups := map[string][]*hostState{}
	var files []string
	bare := *b
	bare.When = nil
	for _, h := range hosts {
		file, ok, err := p.includeName(b, &bare, h, in, hv)
		if err != nil {
			p.failHost(b, h, in, templateFailure(b, err))
			continue
		}
		if !ok {
			continue
		}
		if groups[file] == nil {
			files = append(files, file)
		}
		groups[file] = append(groups[file], h)
	}
	for _, file := range files {
		tasks, err := p.r.includeTasks(b.dynInclude, file)
		if err != nil {
			for _, h := range groups[file] {
				p.failHost(b, h, in, failure(err.Error()))
			}
			continue
		}
		if d := b.dynInclude; d.role != nil {
			if err := p.addHandlers(d.parser.pc.play.Handlers); err != nil {
				for _, h := range groups[file] {
					p.failHost(b, h, in, failure(err.Error()))
				}
				continue
			}
		}
		blk := bare
		blk.dynInclude, blk.Block, blk.include = nil, tasks, "" // the include was entered (enterInclude)
		p.runBlock(ctx, &blk, groups[file], in)
	}
}

// includeName evaluates the include's conditions and file name on a host.
func (p *playRun) includeName(b, bare *Task, h *hostState, in *inherit, hv map[string]any) (string, bool, error) {
	vars, err := p.taskVars(h, bare, in, hv)
	if err != nil {
		return "", false, err
	}
	if ok, err := p.conds(append(append([]string{}, in.when...), b.When...), vars); err != nil || !ok {
		return "", false, err
	}
	v, err := p.r.eng.RenderString(b.dynInclude.file, vars)
	if err != nil {
		return "", false, err
	}
	return template.String(v), true, nil
}

// addHandlers registers the handlers a role read at run time added to the
// parsed play (include_role with a templated name): the play being run may
// be a copy made before, its topics were computed at its start, and the
// handlers' modules are resolved here.
func (p *playRun) addHandlers(all []*Task) error {
	known, listed := map[*Task]bool{}, map[*Task]bool{}
	for _, hs := range p.topics {
		for _, hd := range hs {
			known[hd] = true
		}
	}
	for _, hd := range p.play.Handlers {
		listed[hd] = true
	}
	var added []*Task
	for _, hd := range all {
		if known[hd] {
			continue
		}
		added = append(added, hd)
		if !listed[hd] {
			p.play.Handlers = append(p.play.Handlers, hd)
		}
	}
	if len(added) == 0 {
		return nil
	}
	for name, hs := range handlerTopics(added) {
		p.topics[name] = append(p.topics[name], hs...)
	}
	return p.r.prepared(fmt.Sprintf("%p|handlers", added[0]), added)
}

// failHost reports and applies a failure of a task on one host.
func (p *playRun) failHost(t *Task, h *hostState, in *inherit, o outcome) {
	p.r.rep.Report(Event{Kind: EventTaskStart, Play: p.name(), Task: t.DisplayName()})
	p.report(t, h, in, o)
	p.apply(t, h, o, in, true)
}

// includeTasks reads and prepares an included file's tasks (or role), once per run.
func (r *runner) includeTasks(d *dynInclude, file string) ([]*Task, error) {
	if d.role != nil {
		return r.includeRole(d, file)
	}
	sp := *d.parser
	path := file
	if sp.role != nil && !filepath.IsAbs(file) {
		if cand := filepath.Join(sp.role.role.Dir, "tasks", file); fileExists(cand) {
			path = cand
		}
	}
	path = sp.resolve(path)
	key := fmt.Sprintf("%p|%s", d, path)
	if tasks, ok := r.included[key]; ok {
		return tasks, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("include_tasks: %w", err)
	}
	sp.file, sp.depth, sp.probs = path, sp.depth+1, &problems{}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, sp.yamlError(err)
	}
	tasks := []*Task{}
	if len(doc.Content) > 0 && !isNull(doc.Content[0]) {
		tasks, err = sp.tasks(doc.Content[0], "include_tasks", d.handler)
		if err == nil {
			err = sp.probs.err()
		}
		if err != nil {
			return nil, err
		}
	}
	return tasks, r.prepared(key, tasks)
}

// prepared resolves the modules of tasks read at run time and remembers them.
func (r *runner) prepared(key string, tasks []*Task) error {
	args, err := prepare(&Playbook{Plays: []*Play{{Tasks: tasks, GatherFacts: new(bool)}}}, r.modules, true)
	if err != nil {
		return err
	}
	r.argsMu.Lock()
	for t, a := range args {
		r.args[t] = a
	}
	r.argsMu.Unlock()
	if r.included == nil {
		r.included = map[string][]*Task{}
	}
	r.included[key] = tasks
	return nil
}

// includeRole reads the role an include_role names on a host, once per run.
func (r *runner) includeRole(d *dynInclude, name string) ([]*Task, error) {
	key := fmt.Sprintf("%p|role|%s", d, name)
	if tasks, ok := r.included[key]; ok {
		return tasks, nil
	}
	sp := *d.parser
	sp.probs = &problems{}
	spec := *d.role
	spec.name, spec.block = name, &Task{Pos: sp.pos(d.node)}
	spec.public = false // the play's views are built: its tasks get its variables themselves
	b, err := sp.useRole(d.node, spec)
	if err == nil {
		err = sp.probs.err()
	}
	if err != nil {
		return nil, err
	}
	return b.Block, r.prepared(key, b.Block)
}
