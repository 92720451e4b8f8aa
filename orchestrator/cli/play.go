package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"orch/orchestrator"
)

// PlayCmd is `orch play FILE`, ansible-playbook's shape.
type PlayCmd struct {
	Playbook    string   `arg:"" help:"Playbook file." type:"existingfile"`
	Agent       string   `help:"nodeagent binary for agent_install (default: next to orch)." type:"path"`
	Check       bool     `short:"C" help:"Show what would change without changing anything."`
	Diff        bool     `short:"D" help:"Show the differences of what changes."`
	ExtraVars   []string `short:"e" name:"extra-vars" help:"key=value, or @file.yml (repeatable)."`
	Tags        []string `short:"t" help:"Run only tasks with these tags."`
	SkipTags    []string `help:"Skip tasks with these tags."`
	StartAtTask string   `help:"Start at the task with this name."`
	ListHosts   bool     `help:"List the hosts each play would run on, then exit."`
	ListTasks   bool     `help:"List the tasks, then exit."`
	SyntaxCheck bool     `help:"Check the playbook (imports, roles, templates, modules) without running it; report every problem."`
	Format      string   `help:"Output: text or json." default:"text" enum:"text,json"`
}

// Run runs the playbook.
func (c *PlayCmd) Run(g *Globals) error {
	if c.SyntaxCheck {
		return orchestrator.SyntaxCheck(c.Playbook)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	extra, err := parseExtraVars(c.ExtraVars)
	if err != nil {
		return err
	}
	opts := g.options()
	opts.AgentBinary, opts.Check, opts.Diff, opts.ExtraVars = c.Agent, c.Check, c.Diff, extra
	opts.Tags, opts.SkipTags, opts.StartAtTask, opts.Format = c.Tags, c.SkipTags, c.StartAtTask, c.Format
	if p := newTermPrompter(g.Stdin, g.Stdout); p != nil {
		opts.Prompter = p // vars_prompt asks on the terminal
	}
	if c.ListHosts || c.ListTasks {
		return orchestrator.List(c.Playbook, opts, c.ListHosts, c.ListTasks)
	}
	code, err := orchestrator.Play(ctx, c.Playbook, opts)
	if err != nil && code == 1 {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// parseExtraVars reads -e key=value and -e @file.yml, later ones winning.
func parseExtraVars(args []string) (map[string]any, error) {
	out := map[string]any{}
	for _, a := range args {
		if path, ok := strings.CutPrefix(a, "@"); ok {
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("-e @%s: %w", path, err)
			}
			var m map[string]any
			if err := yaml.Unmarshal(data, &m); err != nil {
				return nil, fmt.Errorf("-e @%s: %w", path, err)
			}
			for k, v := range m {
				out[k] = v
			}
			continue
		}
		for _, kv := range strings.Fields(a) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("-e %q: want key=value or @file", kv)
			}
			var val any
			if err := yaml.Unmarshal([]byte(v), &val); err != nil || val == nil {
				val = v
			}
			out[k] = val
		}
	}
	return out, nil
}
