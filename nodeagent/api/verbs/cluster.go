package verbs

import (
	"context"
	"fmt"
	"io"

	"orch/nodeagent/api"
	"orch/output"
)

// ClusterCmd is `cluster`: the members and their join tokens, as `lxc cluster`.
type ClusterCmd struct {
	List        ClusterListCmd        `cmd:"" help:"List the cluster's members."`
	Show        ClusterShowCmd        `cmd:"" help:"Show one member."`
	Edit        ClusterEditCmd        `cmd:"" help:"Set a member's description and failure domain from YAML on stdin (cluster show's output)."`
	Remove      ClusterRemoveCmd      `cmd:"" help:"Remove a member."`
	Add         ClusterAddCmd         `cmd:"" help:"Issue a one-use join token for a new member."`
	ListTokens  ClusterListTokensCmd  `cmd:"" name:"list-tokens" help:"List outstanding join tokens."`
	RevokeToken ClusterRevokeTokenCmd `cmd:"" name:"revoke-token" help:"Revoke a join token."`
}

// ClusterListCmd lists members, as `lxc cluster list`.
type ClusterListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists every member. On a blocked member it says so and on which members it waits.
func (c *ClusterListCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		ms, err := cl.Members(ctx)
		if err != nil {
			if s, _, serr := cl.Server(ctx); serr == nil && s.Environment.Blocked {
				return fmt.Errorf("%s", s.Environment.Message)
			}
			return err
		}
		return output.Render(e.Stdout, c.Format, ms, func() ([]string, [][]string) { return output.MemberTable(ms) })
	})
}

// ClusterShowCmd shows one member.
type ClusterShowCmd struct {
	Name   string        `arg:""`
	Format output.Format `help:"table, json or yaml." default:"yaml"`
}

// Run shows the member.
func (c *ClusterShowCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		m, err := cl.Member(ctx, c.Name)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, m, func() ([]string, [][]string) { return output.MemberTable([]api.ClusterMember{*m}) })
	})
}

// ClusterEditCmd is `cluster edit NAME`, as `lxc cluster edit`: the member's YAML (as
// `cluster show` prints it) on stdin; its description and failure_domain are applied, the
// read-only keys ignored.
type ClusterEditCmd struct {
	Name string `arg:""`
}

// Run reads the YAML (errors name <stdin>, line and column) and applies it.
func (c *ClusterEditCmd) Run(e *Env) error {
	if e.Stdin == nil {
		return fmt.Errorf("member %s: no YAML on stdin", c.Name)
	}
	data, err := io.ReadAll(io.LimitReader(e.Stdin, 1<<20))
	if err != nil {
		return fmt.Errorf("reading <stdin>: %w", err)
	}
	var m memberEdit
	if err := api.DecodeStrict("<stdin>", data, &m); err != nil {
		return err
	}
	if m.ServerName != "" && m.ServerName != c.Name {
		return fmt.Errorf("<stdin>: server_name %q differs from %q", m.ServerName, c.Name)
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		return cl.UpdateMember(ctx, c.Name, api.ClusterMemberPut{Description: m.Description, FailureDomain: m.FailureDomain})
	})
}

// memberEdit is what `cluster edit` reads: the editable keys, and the read-only keys of
// `cluster show` that it accepts and ignores (any other key is an error).
type memberEdit struct {
	ServerName    string `yaml:"server_name"`
	Description   string `yaml:"description"`
	FailureDomain string `yaml:"failure_domain"`

	URL           any `yaml:"url"`
	Database      any `yaml:"database"`
	Roles         any `yaml:"roles"`
	Status        any `yaml:"status"`
	Message       any `yaml:"message"`
	Version       any `yaml:"version"`
	SchemaVersion any `yaml:"schema_version"`
	APILevel      any `yaml:"api_level"`
	LastHeartbeat any `yaml:"last_heartbeat"`
	Architecture  any `yaml:"architecture"`
	Config        any `yaml:"config"`
	Groups        any `yaml:"groups"`
}

// ClusterRemoveCmd removes a member.
type ClusterRemoveCmd struct {
	Name  string `arg:""`
	Force bool   `help:"Remove a member that cannot be reached (last resort)."`
	Yes   bool   `help:"Do not ask for confirmation."`
}

// Run asks for confirmation of --force, then removes.
func (c *ClusterRemoveCmd) Run(e *Env) error {
	if c.Force && !c.Yes {
		msg := fmt.Sprintf("Forcefully removing %q deletes its rows from the database without contacting it.\n"+
			"Do this only for a member that is gone for good. Continue? (yes/no) [default=no]: ", c.Name)
		if !e.confirm(msg) {
			return fmt.Errorf("aborted: %s was not removed", c.Name)
		}
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := cl.RemoveMember(ctx, c.Name, c.Force); err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "Member %s removed\n", c.Name)
		return nil
	})
}

// ClusterAddCmd prints a join token for a new member.
type ClusterAddCmd struct {
	Name string `arg:""`
}

// Run issues the token: the token alone on stdout, its expiry on stderr.
func (c *ClusterAddCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		t, err := cl.CreateToken(ctx, c.Name)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stderr, "Member %s join token (one use, expires %s):\n", c.Name, t.ExpiresAt.Format("2006-01-02 15:04:05 MST"))
		fmt.Fprintln(e.Stdout, t.Token)
		return nil
	})
}

// ClusterListTokensCmd lists outstanding tokens (never their secrets).
type ClusterListTokensCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the tokens.
func (c *ClusterListTokensCmd) Run(e *Env) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		ts, err := cl.Tokens(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, ts, func() ([]string, [][]string) {
			rows := [][]string{}
			for _, t := range ts {
				rows = append(rows, []string{t.ServerName, t.ExpiresAt.Format("2006/01/02 15:04 MST")})
			}
			return []string{"NAME", "EXPIRES AT"}, rows
		})
	})
}

// ClusterRevokeTokenCmd revokes a token.
type ClusterRevokeTokenCmd struct {
	Name string `arg:""`
}

// Run revokes it.
func (c *ClusterRevokeTokenCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error { return cl.RevokeToken(ctx, c.Name) })
}
