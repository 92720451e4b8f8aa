package cli

import (
	"context"
	"fmt"

	"orch/nodeagent/api"
	"orch/orchestrator"
	"orch/output"
)

// RemoteCmd is `orch remote`: the cluster's image servers, as the agent's `remote`.
type RemoteCmd struct {
	Add    RemoteAddCmd    `cmd:"" help:"Add a simplestreams image server: NAME URL."`
	List   RemoteListCmd   `cmd:"" help:"List image servers."`
	Remove RemoteRemoveCmd `cmd:"" help:"Remove an image server."`
}

// RemoteAddCmd is `remote add NAME URL`.
type RemoteAddCmd struct {
	Name string `arg:""`
	URL  string `arg:""`
}

// Run records the remote.
func (c *RemoteAddCmd) Run(g *Globals) error {
	return withMember(g, "", func(ctx context.Context, m *orchestrator.Member) error {
		if err := m.AddRemote(ctx, api.Remote{Name: c.Name, URL: c.URL, Protocol: "simplestreams"}); err != nil {
			return fmt.Errorf("remote %s: %w", c.Name, err)
		}
		return nil
	})
}

// RemoteListCmd is `remote list`.
type RemoteListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the remotes.
func (c *RemoteListCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return withMember(g, "", func(ctx context.Context, m *orchestrator.Member) error {
		rs, err := m.Remotes(ctx)
		if err != nil {
			return err
		}
		return output.Render(g.Stdout, c.Format, rs, func() ([]string, [][]string) { return remoteTable(rs) })
	})
}

// remoteTable is the agent's `remote list` table: NAME, URL, PROTOCOL.
func remoteTable(rs []api.Remote) ([]string, [][]string) {
	rows := [][]string{}
	for _, r := range rs {
		rows = append(rows, []string{r.Name, r.URL, r.Protocol})
	}
	return []string{"NAME", "URL", "PROTOCOL"}, rows
}

// RemoteRemoveCmd is `remote remove NAME`.
type RemoteRemoveCmd struct {
	Name string `arg:""`
}

// Run removes the remote.
func (c *RemoteRemoveCmd) Run(g *Globals) error {
	return withMember(g, "", func(ctx context.Context, m *orchestrator.Member) error {
		if err := m.RemoveRemote(ctx, c.Name); err != nil {
			return fmt.Errorf("remote %s: %w", c.Name, err)
		}
		return nil
	})
}
