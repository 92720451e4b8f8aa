package playbooks

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Roles are read at parse time, as Ansible does: a role named in `roles:`,
// `import_role` or `include_role` (with a literal name) becomes a block of
// its dependencies' tasks and its own, each task remembering its role
// (role_path, role defaults and vars, templates/ and files/). See DESIGN.md.

// ErrRoleNotFound means a role is in none of the searched directories.
var ErrRoleNotFound = errors.New("role not found")

// role is one role directory's contents that do not depend on how it is used.
type role struct {
	// Name as written (the directory's base name when found by path).
	Name string
	// Dir is the role's directory.
	Dir string
	// AllowDuplicates is meta/main.yml's allow_duplicates.
	AllowDuplicates bool
}

// roleUse is one use of a role: the role, the defaults and vars files
// chosen, the parameters given, and whether its variables are play-wide.
type roleUse struct {
	role     *role
	defaults map[string]any
	vars     map[string]any
	// params are the role entry's parameters (and vars:), above facts.
	params map[string]any
	// public uses have their defaults and vars in the play's view already.
	public bool
}

// playCtx is parse state shared by every file of one play.
type playCtx struct {
	play *Play
	// seen are the roles already run in the play (name+params), for dedupe.
	seen map[string]bool
	// handlers already added to the play, by role directory + file.
	handlers map[string]bool
}

// roleSpec is a role reference: `roles:` entries, meta dependencies,
// include_role/import_role arguments.
type roleSpec struct {
	name                                            string
	tasksFrom, varsFrom, defaultsFrom, handlersFrom string
	params                                          map[string]any
	block                                           *Task // keywords on the entry (when, tags, become…)
	public                                          bool
	dedupe                                          bool
}

// rolesPath is where roles are searched: the playbook's roles/, then
// ANSIBLE_ROLES_PATH or ansible.cfg's roles_path (the file named by
// ANSIBLE_CONFIG, else ./ansible.cfg, else the one next to the playbook),
// then Ansible's default directories, then the playbook's directory.
func rolesPath(root string) []string {
	dirs := []string{filepath.Join(root, "roles")}
	if env := os.Getenv("ANSIBLE_ROLES_PATH"); env != "" {
		dirs = append(dirs, filepath.SplitList(env)...)
	} else if cfg := cfgRolesPath(root); cfg != nil {
		dirs = append(dirs, cfg...)
	} else {
		home, _ := os.UserHomeDir()
		dirs = append(dirs, filepath.Join(home, ".ansible", "roles"), "/usr/share/ansible/roles", "/etc/ansible/roles")
	}
	return append(dirs, root)
}

// cfgRolesPath reads roles_path from [defaults] of ansible.cfg (relative
// entries are relative to that file).
func cfgRolesPath(root string) []string {
	var data []byte
	err := os.ErrNotExist
	for _, cfg := range []string{os.Getenv("ANSIBLE_CONFIG"), "ansible.cfg", filepath.Join(root, "ansible.cfg")} {
		if cfg == "" {
			continue
		}
		if data, err = os.ReadFile(cfg); err == nil {
			root, _ = filepath.Abs(filepath.Dir(cfg))
			break
		}
	}
	if err != nil {
		return nil
	}
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[] ")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section != "defaults" || strings.TrimSpace(k) != "roles_path" {
			continue
		}
		var out []string
		for _, d := range filepath.SplitList(strings.TrimSpace(v)) {
			d = os.ExpandEnv(d)
			if strings.HasPrefix(d, "~/") {
				home, _ := os.UserHomeDir()
				d = filepath.Join(home, d[2:])
			}
			if !filepath.IsAbs(d) {
				d = filepath.Join(root, d)
			}
			out = append(out, d)
		}
		return out
	}
	return nil
}

// findRole resolves a role name (or path) to its directory, made absolute
// (its files are joined to it later, whatever the working directory).
func (p *parser) findRole(name string) (string, error) {
	dir, err := p.findRoleDir(name)
	if err != nil {
		return "", err
	}
	return filepath.Abs(dir)
}

func (p *parser) findRoleDir(name string) (string, error) {
	if strings.ContainsAny(name, "/") || filepath.IsAbs(name) {
		dir := name
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(p.root, name)
		}
		if isDir(dir) {
			return dir, nil
		}
	}
	var searched []string
	dirs := slices.Clone(p.rolesPath)
	if p.role != nil {
		dirs = append(dirs, filepath.Dir(p.role.role.Dir)) // a dependency next to its role
	}
	for _, base := range dirs {
		cand := filepath.Join(base, name)
		if isDir(cand) {
			return cand, nil
		}
		searched = append(searched, base)
	}
	return "", fmt.Errorf("%w: %q (searched %s)", ErrRoleNotFound, name, strings.Join(searched, ", "))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// roleFile finds NAME, NAME.yml, NAME.yaml or NAME.json (or a directory
// NAME/ of such files) under a role's subdirectory; "" if none.
func roleFile(dir, sub, name string) string {
	base := filepath.Join(dir, sub, name)
	for _, cand := range []string{base + ".yml", base + ".yaml", base + ".json", base} {
		if st, err := os.Stat(cand); err == nil && (!st.IsDir() || cand == base) {
			return cand
		}
	}
	return ""
}

// loadVarsFile reads a role's defaults or vars (a file, or a directory of files merged in name order).
func (p *parser) loadVarsFile(path string) (map[string]any, error) {
	out := map[string]any{}
	if path == "" {
		return out, nil
	}
	files := []string{path}
	if isDir(path) {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yml") || strings.HasSuffix(e.Name(), ".yaml")) {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, (&parser{file: f}).yamlError(err)
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue
		}
		sp := &parser{file: f, eng: p.eng, probs: p.probs}
		m, err := sp.mapping(doc.Content[0], "")
		if err != nil {
			return nil, err
		}
		maps.Copy(out, m)
	}
	return out, nil
}

// useRole expands a role reference into a block task: its dependencies'
// blocks, then its tasks. It adds the role's handlers to the play and, for
// public uses, its defaults and vars to the play's.
func (p *parser) useRole(n *yaml.Node, spec roleSpec) (*Task, error) {
	if p.pc == nil {
		return nil, p.errf(n, "roles", "roles are only valid inside a play")
	}
	if strings.Contains(spec.name, "{{") {
		return nil, p.errf(n, "name", "a templated role name is not supported (%s)", spec.name)
	}
	if p.depth >= maxIncludeDepth {
		return nil, p.errf(n, "roles", "roles nested deeper than %d", maxIncludeDepth)
	}
	dir, err := p.findRole(spec.name)
	if err != nil {
		return nil, p.wrap(n, "role", err)
	}
	r := &role{Name: spec.name, Dir: dir}
	if strings.Contains(spec.name, "/") {
		r.Name = filepath.Base(dir)
	}
	ru := &roleUse{role: r, params: spec.params}
	block := spec.block
	if block == nil {
		block = &Task{Pos: p.pos(n)}
	}
	block.Name = "role " + r.Name
	block.Block = []*Task{}
	block.role = ru
	if ru.defaults, err = p.roleVarsFile(n, dir, "defaults", or(spec.defaultsFrom, "main")); err != nil {
		return nil, err
	}
	if ru.vars, err = p.roleVarsFile(n, dir, "vars", or(spec.varsFrom, "main")); err != nil {
		return nil, err
	}
	sp := &parser{file: p.file, eng: p.eng, root: p.root, depth: p.depth + 1, pc: p.pc, role: ru, rolesPath: p.rolesPath, probs: p.probs}
	deps, err := sp.roleMeta(n, r)
	if err != nil {
		return nil, err
	}
	key := dir + "|" + spec.tasksFrom + "|" + fmt.Sprint(spec.params)
	if spec.dedupe && p.pc.seen[key] && !r.AllowDuplicates {
		block.Block = []*Task{} // already run in this play with the same parameters
		return block, nil
	}
	p.pc.seen[key] = true
	block.Block = append(block.Block, deps...)
	tasks, err := sp.roleTasks(n, dir, "tasks", or(spec.tasksFrom, "main"), false, spec.tasksFrom != "")
	if err != nil {
		return nil, err
	}
	block.Block = append(block.Block, tasks...)
	if err := sp.roleHandlers(n, dir, or(spec.handlersFrom, "main")); err != nil {
		return nil, err
	}
	if spec.public {
		play := p.pc.play
		ru.public = true
		for _, layer := range []struct{ play, role map[string]any }{{play.roleDefaults, ru.defaults}, {play.roleVars, ru.vars}} {
			for k := range layer.role {
				if _, dup := layer.play[k]; dup {
					if play.roleShared == nil {
						play.roleShared = map[string]bool{}
					}
					play.roleShared[k] = true
				}
			}
		}
		play.roleDefaults = mergeArgs(play.roleDefaults, ru.defaults)
		play.roleVars = mergeArgs(play.roleVars, ru.vars)
	}
	return block, nil
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func (p *parser) roleVarsFile(n *yaml.Node, dir, sub, name string) (map[string]any, error) {
	path := roleFile(dir, sub, name)
	if path == "" && name != "main" {
		return nil, p.errf(n, sub+"_from", "role %s has no %s/%s", filepath.Base(dir), sub, name)
	}
	m, err := p.loadVarsFile(path)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, p.wrap(n, sub, err)
	}
	return m, nil
}

// roleTasks parses a role's tasks (or handlers) file; a missing main file is no tasks.
func (p *parser) roleTasks(n *yaml.Node, dir, sub, name string, handlers, required bool) ([]*Task, error) {
	path := roleFile(dir, sub, name)
	if path == "" || isDir(path) {
		if required {
			return nil, p.errf(n, sub+"_from", "role %s has no %s/%s", filepath.Base(dir), sub, name)
		}
		return []*Task{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, p.wrap(n, sub, err)
	}
	sp := *p
	sp.file, sp.parent = path, p
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, sp.yamlError(err)
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return []*Task{}, nil
	}
	return sp.tasks(doc.Content[0], sub, handlers)
}

// roleHandlers adds a role's handlers to the play once; each also answers
// to "ROLE : NAME", as in Ansible.
func (p *parser) roleHandlers(n *yaml.Node, dir, name string) error {
	key := dir + "|" + name
	if p.pc.handlers[key] {
		return nil
	}
	p.pc.handlers[key] = true
	hs, err := p.roleTasks(n, dir, "handlers", name, true, false)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if h.Name != "" {
			h.Listen = append(h.Listen, p.role.role.Name+" : "+h.Name)
		}
	}
	p.pc.play.Handlers = append(p.pc.play.Handlers, hs...)
	return nil
}

// roleMeta reads meta/main.yml: allow_duplicates and the dependencies,
// returned as blocks to run before the role's tasks.
func (p *parser) roleMeta(n *yaml.Node, r *role) ([]*Task, error) {
	path := roleFile(r.Dir, "meta", "main")
	if path == "" || isDir(path) {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, p.wrap(n, "meta", err)
	}
	mp := *p
	mp.file = path
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, mp.yamlError(err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil
	}
	var deps []*Task
	err = mp.pairs(doc.Content[0], "meta/main.yml", func(key string, k, v *yaml.Node) error {
		switch key {
		case "allow_duplicates":
			var err error
			r.AllowDuplicates, err = mp.boolean(v, key)
			return err
		case "dependencies":
			if isNull(v) {
				return nil
			}
			if v.Kind != yaml.SequenceNode {
				return mp.errf(v, key, "dependencies must be a list, got %s", kindName(v))
			}
			for _, e := range v.Content {
				spec, err := mp.roleEntry(e)
				if err != nil {
					return err
				}
				spec.public, spec.dedupe = true, true
				b, err := mp.useRole(e, spec)
				if err != nil {
					return err
				}
				deps = append(deps, b)
			}
		}
		return nil // galaxy_info, argument_specs, collections…: nothing to run
	})
	return deps, err
}

// roleEntry reads a `roles:` entry or a dependency: a name, or a mapping
// of role/name, task keywords (when, tags, become, vars…) and parameters.
func (p *parser) roleEntry(n *yaml.Node) (roleSpec, error) {
	spec := roleSpec{block: &Task{Pos: p.pos(n)}, params: map[string]any{}}
	if n.Kind == yaml.ScalarNode {
		name, err := p.str(n, "role")
		spec.name = name
		return spec, err
	}
	err := p.pairs(n, "a role entry", func(key string, k, v *yaml.Node) error {
		switch key {
		case "role", "name":
			var err error
			spec.name, err = p.str(v, key)
			return err
		case "vars":
			m, err := p.mapping(v, key)
			maps.Copy(spec.params, m)
			return err
		case "tasks_from", "vars_from", "defaults_from", "handlers_from":
			s, err := p.str(v, key)
			*map[string]*string{"tasks_from": &spec.tasksFrom, "vars_from": &spec.varsFrom,
				"defaults_from": &spec.defaultsFrom, "handlers_from": &spec.handlersFrom}[key] = s
			return err
		case "src", "scm", "version": // requirements-style entries
			return nil
		}
		if _, isLoop := lookupLoops[strings.TrimPrefix(key, "with_")]; key == "loop" || isLoop && strings.HasPrefix(key, "with_") {
			return p.errf(k, key, "roles: entries cannot loop; use include_role with a loop")
		}
		if ok, err := p.taskKeyword(spec.block, key, v); ok || err != nil {
			return err
		}
		val, err := p.value(v, key)
		spec.params[key] = val
		return err
	})
	if err == nil && spec.name == "" {
		err = p.errf(n, "role", "a role entry needs role: NAME")
	}
	return spec, err
}

// roles parses a play's `roles:` list into blocks.
func (p *parser) roles(n *yaml.Node) ([]*Task, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "roles", "expected a list of roles, got %s", kindName(n))
	}
	var out []*Task
	for _, e := range n.Content {
		spec, err := p.roleEntry(e)
		if err != nil {
			return nil, err
		}
		spec.public, spec.dedupe = true, true
		b, err := p.useRole(e, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// includeRole turns import_role/include_role into a block of the role's
// tasks. include_role is read at parse time too (its name cannot be
// templated); its variables are play-wide only with public: true.
func (p *parser) includeRole(t *Task, n *yaml.Node) error {
	key := t.Module
	spec := roleSpec{block: t, public: key == "import_role"}
	if key == "include_role" {
		t.include = key
	}
	if t.FreeForm != nil {
		kv, err := ParseKV(*t.FreeForm)
		if err != nil {
			return p.wrap(n, key, err)
		}
		t.Args = mergeArgs(kv, t.Args)
	}
	for k, v := range t.Args {
		s := fmt.Sprint(v)
		switch k {
		case "name", "role":
			spec.name = s
		case "tasks_from":
			spec.tasksFrom = s
		case "vars_from":
			spec.varsFrom = s
		case "defaults_from":
			spec.defaultsFrom = s
		case "handlers_from":
			spec.handlersFrom = s
		case "public":
			spec.public = isTrue(v)
		case "allow_duplicates", "rolespec_validate":
		case "apply":
			if err := p.applyKeywords(t, n, key, v); err != nil {
				return err
			}
		default:
			return p.errf(n, key, "unknown argument %q (name, tasks_from, vars_from, defaults_from, handlers_from, public, apply, allow_duplicates)", k)
		}
	}
	if spec.name == "" {
		return p.errf(n, key, "needs name: ROLE")
	}
	if strings.Contains(spec.name, "{{") && key == "include_role" {
		if err := p.eng.CheckTemplate(spec.name); err != nil {
			return p.wrap(n, "name", err)
		}
		sp := *p
		t.dynInclude = &dynInclude{file: spec.name, parser: &sp, role: &spec, node: n}
		if t.Name == "" {
			t.Name = "include_role " + spec.name
		}
		t.Block, t.Module, t.FreeForm, t.Args = []*Task{}, "", nil, nil
		return nil
	}
	name := t.Name
	t.Module, t.FreeForm, t.Args = "", nil, nil
	if _, err := p.useRole(n, spec); err != nil {
		return err
	}
	if name != "" {
		t.Name = name
	}
	return nil
}

func isTrue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		switch strings.ToLower(x) {
		case "yes", "true", "on", "1":
			return true
		}
	}
	return false
}
