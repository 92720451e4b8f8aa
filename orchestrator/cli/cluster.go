package cli

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"orch/nodeagent/api"
	"orch/orchestrator"
	"orch/output"
)

// ClusterCmd talks HTTPS to the first reachable member named by the inventory.
type ClusterCmd struct {
	List   ClusterListCmd   `cmd:"" help:"List the members."`
	Show   ClusterShowCmd   `cmd:"" help:"Show one member."`
	Remove ClusterRemoveCmd `cmd:"" help:"Remove a member."`
	Add    ClusterAddCmd    `cmd:"" help:"Print a one-use join token for a new member."`
}

func withCluster(g *Globals, fn func(ctx context.Context, cl *api.Client) error) error {
	ctx := context.Background()
	cl, done, err := orchestrator.Cluster(ctx, g.options())
	if err != nil {
		return err
	}
	defer done()
	return fn(ctx, cl)
}

// ClusterListCmd lists the members.
type ClusterListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists them.
func (c *ClusterListCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		ms, err := cl.Members(ctx)
		if err != nil {
			return err
		}
		return output.Render(g.Stdout, c.Format, ms, func() ([]string, [][]string) { return output.MemberTable(ms) })
	})
}

// ClusterShowCmd shows one member.
type ClusterShowCmd struct {
	Name   string        `arg:""`
	Format output.Format `help:"table, json or yaml." default:"yaml"`
}

// Run shows it.
func (c *ClusterShowCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		m, err := cl.Member(ctx, c.Name)
		if err != nil {
			return err
		}
		return output.Render(g.Stdout, c.Format, m, func() ([]string, [][]string) { return output.MemberTable([]api.ClusterMember{*m}) })
	})
}

// ClusterRemoveCmd removes a member.
type ClusterRemoveCmd struct {
	Name  string `arg:""`
	Force bool   `help:"Remove a member that cannot be reached (last resort)."`
	Yes   bool   `help:"Do not ask for confirmation."`
}

// Run removes it, asking first for --force.
func (c *ClusterRemoveCmd) Run(g *Globals) error {
	if c.Force && !c.Yes {
		fmt.Fprintf(g.Stdout, "Forcefully removing %q deletes it from the cluster without contacting it. Continue? (yes/no) [default=no]: ", c.Name)
		line, _ := bufio.NewReader(g.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" {
			return fmt.Errorf("aborted: %s was not removed", c.Name)
		}
	}
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		if err := cl.RemoveMember(ctx, c.Name, c.Force); err != nil {
			return err
		}
		fmt.Fprintf(g.Stdout, "Member %s removed\n", c.Name)
		return nil
	})
}

// ClusterAddCmd prints a join token.
type ClusterAddCmd struct {
	Name string `arg:""`
}

// Run issues it.
func (c *ClusterAddCmd) Run(g *Globals) error {
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		t, err := cl.CreateToken(ctx, c.Name)
		if err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, t.Token)
		return nil
	})
}
