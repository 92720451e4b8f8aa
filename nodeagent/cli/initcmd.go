package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"gopkg.in/yaml.v3"

	"orch/nodeagent/api"
	"orch/nodeagent/config"
)

// InitCmd bootstraps or joins this member: from a preseed on stdin (as `lxd init
// --preseed`) or by asking the guide's questions.
type InitCmd struct {
	Preseed bool   `help:"Read a preseed YAML document from stdin (or --file)."`
	File    string `help:"Read the preseed from this file instead of stdin." type:"existingfile"`
	Wipe    bool   `help:"Join even though this agent directory holds data (it is lost)."`
	Dump    bool   `help:"Interactive: print the preseed instead of applying it (secrets left out)."`
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
	in := bufio.NewReader(g.Stdin)
	p, wipe, err := interview(g, in)
	if err != nil {
		return err
	}
	if c.Dump {
		return printPreseed(g.Stdout, p)
	}
	pr := &prompter{g: g, in: in}
	show, err := pr.yesNo(`Would you like a YAML "init" preseed to be printed?`, false)
	if err != nil {
		return err
	}
	if show {
		if err := printPreseed(g.Stdout, p); err != nil {
			return err
		}
	}
	if err := g.client().Init(context.Background(), api.InitPost{Preseed: *p, Wipe: wipe || c.Wipe}); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Member %s is ready.\n", p.Cluster.ServerName)
	return nil
}

// printPreseed prints the preseed init applies, as LXD does, except its secrets (the trust
// password, the cluster password, the join token): secrets never appear in output. A
// comment names each one left out, to be added before the preseed is used.
func printPreseed(w io.Writer, p *api.Preseed) error {
	out, left := withoutSecrets(p)
	b, err := yaml.Marshal(out)
	if err != nil {
		return err
	}
	for _, k := range left {
		fmt.Fprintf(w, "# %s is not printed (a secret): add it before using this preseed.\n", k)
	}
	_, err = w.Write(b)
	return err
}

// withoutSecrets copies p without its secret values and names the keys it left out.
func withoutSecrets(p *api.Preseed) (*api.Preseed, []string) {
	out := *p
	var left []string
	if len(p.Config) > 0 {
		out.Config = map[string]string{}
		for k, v := range p.Config {
			if key, err := config.Lookup(k); err == nil && key.Secret {
				left = append(left, "config."+k)
				continue
			}
			out.Config[k] = v
		}
	}
	if p.Cluster != nil {
		c := *p.Cluster
		if c.ClusterPassword != "" {
			c.ClusterPassword, left = "", append(left, "cluster.cluster_password")
		}
		if c.ClusterToken != "" {
			c.ClusterToken, left = "", append(left, "cluster.cluster_token")
		}
		out.Cluster = &c
	}
	sort.Strings(left)
	return &out, left
}

func (c *InitCmd) readPreseed(g *Globals) (string, []byte, error) {
	if c.File != "" {
		data, err := os.ReadFile(c.File)
		return c.File, data, err
	}
	data, err := io.ReadAll(io.LimitReader(g.Stdin, 16<<20))
	return "<stdin>", data, err
}
