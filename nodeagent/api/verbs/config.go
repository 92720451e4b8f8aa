package verbs

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"orch/nodeagent/api"
	"orch/output"
)

// ConfigCmd is `config`: the cluster's configuration keys, as `lxc config`.
type ConfigCmd struct {
	Get   ConfigGetCmd   `cmd:"" help:"Print a key's value."`
	Set   ConfigSetCmd   `cmd:"" help:"Set keys (KEY VALUE or KEY=VALUE...)."`
	Unset ConfigUnsetCmd `cmd:"" help:"Unset a key."`
	Show  ConfigShowCmd  `cmd:"" help:"Show the whole configuration."`
}

// ConfigGetCmd prints the bare value of one key.
type ConfigGetCmd struct {
	Key string `arg:""`
}

// Run prints the value ("" when unset).
func (c *ConfigGetCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		s, _, err := cl.Server(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.Stdout, s.Config[c.Key])
		return nil
	})
}

// ConfigSetCmd sets one or more keys, replicated to every member for cluster-wide keys.
type ConfigSetCmd struct {
	Args []string `arg:"" help:"KEY VALUE, or KEY=VALUE pairs (a VALUE may be negative: -1)."`
}

// Run sends one PATCH with every key.
func (c *ConfigSetCmd) Run(e *Env) error {
	kv, err := parseKeyValues(c.Args)
	if err != nil {
		return err
	}
	for k, v := range kv {
		if v == "" {
			return fmt.Errorf("%s: empty value (use `config unset %s`)", k, k)
		}
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error { return cl.PatchConfig(ctx, kv, "") })
}

// parseKeyValues reads KEY VALUE (exactly two words, the first without "=") or KEY=VALUE...
func parseKeyValues(args []string) (map[string]string, error) {
	if len(args) == 2 && !strings.Contains(args[0], "=") {
		return map[string]string{args[0]: args[1]}, nil
	}
	out, err := parseAssignments(args)
	if err != nil {
		return nil, fmt.Errorf("%w (or exactly KEY VALUE)", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no key given")
	}
	return out, nil
}

// parseAssignments reads KEY=VALUE words (launch -c, config set).
func parseAssignments(args []string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: expected KEY=VALUE", a)
		}
		out[k] = v
	}
	return out, nil
}

// ConfigUnsetCmd unsets a key.
type ConfigUnsetCmd struct {
	Key string `arg:""`
}

// Run sends a PATCH with an empty value.
func (c *ConfigUnsetCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		return cl.PatchConfig(ctx, map[string]string{c.Key: ""}, "")
	})
}

// ConfigShowCmd shows the configuration.
type ConfigShowCmd struct {
	Format output.Format `help:"table, json or yaml." default:"yaml"`
}

// Run prints every key.
func (c *ConfigShowCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		s, _, err := cl.Server(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, map[string]any{"config": s.Config}, func() ([]string, [][]string) {
			keys := make([]string, 0, len(s.Config))
			for k := range s.Config {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			rows := [][]string{}
			for _, k := range keys {
				rows = append(rows, []string{k, s.Config[k]})
			}
			return []string{"KEY", "VALUE"}, rows
		})
	})
}
