package playbooks

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"orch/playbooks/template"
)

// playRun is the state of one play.
type playRun struct {
	r        *runner
	play     *Play
	files    map[string]any // vars_files, merged
	hosts    []*hostState   // all hosts of the play
	batch    []*hostState   // the current serial batch
	topics   map[string][]*Task
	hostvars map[string]any // snapshot, rebuilt when a view changes
	groups   map[string]any // the groups magic variable
	ended    bool           // meta: end_play
	// invChanged is set when group_by/add_host changed groups: every view is rebuilt.
	invChanged bool
	// free is strategy: free; gil is then held by a host's goroutine
	// except while its module runs (see runFree).
	free bool
	gil  sync.Mutex
}

func (r *runner) runPlay(ctx context.Context, play *Play) error {
	play, err := r.promptVars(play)
	if err != nil {
		return err
	}
	play, err = r.playKeywords(play)
	if err != nil {
		return err
	}
	p := &playRun{r: r, play: play, topics: handlerTopics(play.Handlers), free: play.Strategy == "free"}
	names, err := r.playHosts(play)
	if err != nil {
		return err
	}
	names = orderHosts(names, play.Order)
	for _, h := range r.hosts {
		h.view = nil
	}
	for _, n := range names {
		h := r.hostByName(n)
		if h.failed || h.unreachable {
			continue
		}
		h.ended, h.notified, h.view = false, map[*Task]bool{}, nil
		p.hosts = append(p.hosts, h)
	}
	if p.files, err = r.loadVarsFiles(play); err != nil {
		return err
	}
	if len(p.hosts) == 0 {
		r.rep.Report(Event{Kind: EventPlayStart, Play: playName(play)})
		r.rep.Report(Event{Kind: EventWarning, Play: playName(play), Message: fmt.Sprintf("no hosts matched %q, skipping play", play.Hosts)})
		return nil
	}
	for _, batch := range serialBatches(play.Serial, p.hosts) {
		if r.stop || p.ended || ctx.Err() != nil {
			break
		}
		p.runBatch(ctx, batch)
	}
	return nil
}

func (p *playRun) runBatch(ctx context.Context, batch []*hostState) {
	p.batch = batch
	names := make([]string, len(batch))
	for i, h := range batch {
		names[i] = h.host.Name
	}
	p.r.rep.Report(Event{Kind: EventPlayStart, Play: p.name(), Hosts: names})
	p.refresh(batch...)
	if t := p.play.factsTask; t != nil {
		p.gatherFacts(ctx, t, batch)
	}
	for _, section := range [][]*Task{p.play.PreTasks, p.play.Tasks, p.play.PostTasks} {
		if p.free {
			p.runFree(ctx, section, batch)
		} else {
			p.runTasks(ctx, section, batch, p.rootInherit())
		}
		if !p.halted(ctx) {
			p.flush(ctx, batch, false)
		}
	}
	for _, h := range batch {
		if !h.failed && !h.unreachable {
			return
		}
	}
	p.r.rep.Report(Event{Kind: EventNoHostsLeft, Play: p.name()})
	p.r.stop = true
}

// runFree is strategy: free: each host goes through the tasks on its own,
// not waiting for the others. A host's goroutine holds p.gil except while
// its modules run, so the engine's state is touched by one goroutine at a
// time, as in the linear strategy, and hosts overlap only in module runs.
// Each host runs its notified handlers as soon as it finished the section,
// as Ansible's free strategy does (not when every host has).
func (p *playRun) runFree(ctx context.Context, tasks []*Task, batch []*hostState) {
	var wg sync.WaitGroup
	for _, h := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.gil.Lock()
			defer p.gil.Unlock()
			in := p.rootInherit()
			in.free = true
			p.runTasks(ctx, tasks, []*hostState{h}, in)
			if !p.halted(ctx) {
				p.flush(ctx, []*hostState{h}, true)
			}
		}()
	}
	wg.Wait()
}

// release and acquire let other hosts go on while this host's modules run
// (in a runFree goroutine); they do nothing otherwise.
func (p *playRun) release(in *inherit) {
	if in.free {
		p.gil.Unlock()
	}
}

func (p *playRun) acquire(in *inherit) {
	if in.free {
		p.gil.Lock()
	}
}

// name is the play's name, or its host pattern as Ansible shows it.
func (p *playRun) name() string { return playName(p.play) }

func playName(play *Play) string {
	if play.Name != "" {
		return play.Name
	}
	return play.Hosts
}

func (p *playRun) halted(ctx context.Context) bool {
	return p.r.stop || p.ended || ctx.Err() != nil
}

// playKeywords returns the play with its templated keywords (serial,
// any_errors_fatal, become, gather_facts, check_mode, diff) evaluated with
// the play's vars and the extra vars, as Ansible does.
func (r *runner) playKeywords(play *Play) (*Play, error) {
	if len(play.dyn) == 0 {
		return play, nil
	}
	c := *play
	vars := template.Vars(play.Vars, play.VarsPrompt, r.opts.ExtraVars)
	for _, key := range sortedKeys(play.dyn) {
		v, err := r.eng.Render(play.dyn[key], vars)
		if err != nil {
			return nil, &ParseError{Pos: play.Pos, Key: key, Err: err}
		}
		b := template.Truthy(v)
		switch key {
		case "serial":
			s, err := parseSerial(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: template.String(v)})
			if err != nil {
				return nil, &ParseError{Pos: play.Pos, Key: key, Err: err}
			}
			c.Serial = []any{s}
		case "any_errors_fatal":
			c.AnyErrorsFatal = b
		case "become":
			c.Become = b
		case "gather_facts":
			if !b {
				c.factsTask = nil
			}
		case "check_mode":
			c.CheckMode = &b
		case "diff":
			c.Diff = &b
		}
	}
	return &c, nil
}

// orderHosts applies the play's order keyword.
func orderHosts(names []string, order string) []string {
	switch order {
	case "reverse_inventory":
		slices.Reverse(names)
	case "sorted":
		slices.Sort(names)
	case "reverse_sorted":
		slices.Sort(names)
		slices.Reverse(names)
	case "shuffle":
		rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	}
	return names
}

// playHosts resolves the play's pattern (templated with extra vars) and --limit.
func (r *runner) playHosts(play *Play) ([]string, error) {
	pattern, err := r.eng.RenderString(play.Hosts, r.opts.ExtraVars)
	if err != nil {
		return nil, &ParseError{Pos: play.Pos, Key: "hosts", Err: err}
	}
	names, err := r.selectHosts(template.String(pattern))
	if err == nil && len(names) == 0 && isLocalhost(strings.TrimSpace(template.String(pattern))) {
		name := strings.TrimSpace(template.String(pattern))
		r.hostByName(name) // Ansible's implicit localhost
		names = []string{name}
	}
	if err != nil || r.opts.Limit == "" {
		return names, err
	}
	limit, err := r.selectHosts(r.opts.Limit)
	if err != nil {
		return nil, fmt.Errorf("--limit: %w", err)
	}
	return slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(limit, n) }), nil
}

func (r *runner) selectHosts(pattern string) ([]string, error) {
	sel := r.opts.Select
	if len(r.dynGroups) > 0 || len(r.added) > 0 {
		sel = r.selectDynamic
	}
	names, warnings, err := sel(pattern)
	for _, w := range warnings {
		r.rep.Report(Event{Kind: EventWarning, Message: w})
	}
	if err != nil {
		return nil, fmt.Errorf("host pattern %q: %w", pattern, err)
	}
	return names, nil
}

func (r *runner) loadVarsFiles(play *Play) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range play.VarsFiles {
		path, err := r.varsFile(play, f)
		if err != nil {
			return nil, &ParseError{Pos: play.Pos, Key: "vars_files", Err: err}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &ParseError{Pos: play.Pos, Key: "vars_files", Err: err}
		}
		var vars map[string]any
		if err := yaml.Unmarshal(data, &vars); err != nil {
			return nil, &ParseError{Pos: Pos{File: path, Line: 1, Col: 1}, Err: err}
		}
		maps.Copy(out, normalize(vars).(map[string]any))
	}
	return out, nil
}

// varsFile templates a vars_files entry (with the play's vars and the
// extra vars) and picks the first existing file of a fallback list.
func (r *runner) varsFile(play *Play, entry string) (string, error) {
	var first string
	for i, f := range strings.Split(entry, "\x00") {
		name, err := r.eng.RenderString(f, template.Vars(play.Vars, r.opts.ExtraVars))
		if err != nil {
			return "", err
		}
		path := template.String(name)
		if !filepath.IsAbs(path) {
			path = filepath.Join(r.pb.Dir, path)
		}
		if i == 0 {
			first = path
		}
		if fileExists(path) {
			return path, nil
		}
	}
	return first, nil
}

// serialBatches splits hosts as Ansible's serial does; the last size repeats.
func serialBatches(serial []any, hosts []*hostState) [][]*hostState {
	if len(serial) == 0 {
		return [][]*hostState{hosts}
	}
	var out [][]*hostState
	for i := 0; len(hosts) > 0; i++ {
		n := batchSize(serial[min(i, len(serial)-1)], len(hosts)+countHosts(out))
		n = min(max(n, 1), len(hosts))
		out = append(out, hosts[:n])
		hosts = hosts[n:]
	}
	return out
}

func countHosts(batches [][]*hostState) int {
	n := 0
	for _, b := range batches {
		n += len(b)
	}
	return n
}

func batchSize(v any, total int) int {
	switch x := v.(type) {
	case int:
		if x == 0 {
			return total
		}
		return x
	case string:
		pct, _ := strconv.ParseFloat(strings.TrimSuffix(x, "%"), 64)
		return int(math.Floor(pct * float64(total) / 100))
	}
	return total
}

func handlerTopics(handlers []*Task) map[string][]*Task {
	out := map[string][]*Task{}
	for _, h := range handlers {
		out[h.Name] = append(out[h.Name], h)
		for _, l := range h.Listen {
			out[l] = append(out[l], h)
		}
	}
	return out
}

// gatherFacts runs the play's "Gathering Facts" task first on the batch,
// whatever --start-at-task says (as Ansible does).
func (p *playRun) gatherFacts(ctx context.Context, t *Task, batch []*hostState) {
	started := p.r.started
	p.r.started = true
	p.runTasks(ctx, []*Task{t}, batch, p.rootInherit())
	p.r.started = started
}
