package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"orch/nodeagent/api"
)

// InitCmd bootstraps or joins this member: from a preseed on stdin (as `lxd init
// --preseed`) or by asking the guide's questions.
type InitCmd struct {
	Preseed bool   `help:"Read a preseed YAML document from stdin (or --file)."`
	File    string `help:"Read the preseed from this file instead of stdin." type:"existingfile"`
	Wipe    bool   `help:"Join even though this agent directory holds data (it is lost)."`
	Dump    bool   `help:"Interactive: print the preseed instead of applying it."`
}

// Run parses the preseed (reporting line and column of any error) and applies it.
func (c *InitCmd) Run(g *Globals) error {
	if c.Preseed || c.File != "" {
		name, data, err := c.readPreseed(g)
		if err != nil {
			return err
		}
		p, err := api.ParsePreseed(name, data)
		if err != nil {
			return err
		}
		return g.client().Init(context.Background(), api.InitPost{Preseed: *p, Wipe: c.Wipe})
	}
	p, wipe, err := interview(g)
	if err != nil {
		return err
	}
	if c.Dump {
		b, err := yaml.Marshal(p)
		if err != nil {
			return err
		}
		_, err = g.Stdout.Write(b)
		return err
	}
	if err := g.client().Init(context.Background(), api.InitPost{Preseed: *p, Wipe: wipe || c.Wipe}); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Member %s is ready.\n", p.Cluster.ServerName)
	return nil
}

func (c *InitCmd) readPreseed(g *Globals) (string, []byte, error) {
	if c.File != "" {
		data, err := os.ReadFile(c.File)
		return c.File, data, err
	}
	data, err := io.ReadAll(io.LimitReader(g.Stdin, 16<<20))
	return "<stdin>", data, err
}
