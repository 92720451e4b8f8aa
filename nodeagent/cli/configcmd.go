package cli

import (
	"context"
	"fmt"
	"sort"

	"orch/output"
)

// ConfigCmd groups the configuration commands.
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
func (c *ConfigGetCmd) Run(g *Globals) error {
	s, _, err := g.client().Server(context.Background())
	if err != nil {
		return err
	}
	fmt.Fprintln(g.Stdout, s.Config[c.Key])
	return nil
}

// ConfigSetCmd sets one or more keys, replicated to every member for cluster-wide keys.
type ConfigSetCmd struct {
	Args []string `arg:"" help:"KEY VALUE, or KEY=VALUE pairs."`
}

// Run sends one PATCH with every key.
func (c *ConfigSetCmd) Run(g *Globals) error {
	kv, err := parseKeyValues(c.Args)
	if err != nil {
		return err
	}
	for k, v := range kv {
		if v == "" {
			return fmt.Errorf("%s: empty value (use `config unset %s`)", k, k)
		}
	}
	return g.client().PatchConfig(context.Background(), kv, "")
}

func parseKeyValues(args []string) (map[string]string, error) {
	out := map[string]string{}
	if len(args) == 2 && !containsEq(args[0]) {
		out[args[0]] = args[1]
		return out, nil
	}
	for _, a := range args {
		i := indexEq(a)
		if i <= 0 {
			return nil, fmt.Errorf("%q: expected KEY=VALUE (or exactly KEY VALUE)", a)
		}
		out[a[:i]] = a[i+1:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no key given")
	}
	return out, nil
}

func containsEq(s string) bool { return indexEq(s) >= 0 }

func indexEq(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return i
		}
	}
	return -1
}

// ConfigUnsetCmd unsets a key.
type ConfigUnsetCmd struct {
	Key string `arg:""`
}

// Run sends a PATCH with an empty value.
func (c *ConfigUnsetCmd) Run(g *Globals) error {
	return g.client().PatchConfig(context.Background(), map[string]string{c.Key: ""}, "")
}

// ConfigShowCmd shows the configuration.
type ConfigShowCmd struct {
	Format output.Format `help:"table, json or yaml." default:"yaml"`
}

// Run prints every key.
func (c *ConfigShowCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	s, _, err := g.client().Server(context.Background())
	if err != nil {
		return err
	}
	out := map[string]any{"config": s.Config}
	return output.Render(g.Stdout, c.Format, out, func() ([]string, [][]string) {
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
}
