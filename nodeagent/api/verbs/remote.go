package verbs

import (
	"context"
	"fmt"

	"orch/nodeagent/api"
	"orch/output"
)

// RemoteCmd is `remote`: the cluster's image servers, as `lxc remote`.
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
func (c *RemoteAddCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.AddRemote(ctx, api.Remote{Name: c.Name, URL: c.URL, Protocol: "simplestreams"}); err != nil {
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
func (c *RemoteListCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		rs, err := cl.Remotes(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, rs, func() ([]string, [][]string) { return remoteTable(rs) })
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
func (c *RemoteRemoveCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.RemoveRemote(ctx, c.Name); err != nil {
			return fmt.Errorf("remote %s: %w", c.Name, err)
		}
		return nil
	})
}
