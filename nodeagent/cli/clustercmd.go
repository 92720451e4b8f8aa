package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/pki"
	"orch/output"
)

// ClusterCmd groups the cluster commands.
type ClusterCmd struct {
	List                  ClusterListCmd         `cmd:"" help:"List the cluster's members."`
	Show                  ClusterShowCmd         `cmd:"" help:"Show one member."`
	Remove                ClusterRemoveCmd       `cmd:"" help:"Remove a member."`
	Add                   ClusterAddCmd          `cmd:"" help:"Issue a one-use join token for a new member."`
	ListTokens            ClusterListTokensCmd   `cmd:"" name:"list-tokens" help:"List outstanding join tokens."`
	RevokeToken           ClusterRevokeTokenCmd  `cmd:"" name:"revoke-token" help:"Revoke a join token."`
	ListDatabase          ClusterListDatabaseCmd `cmd:"" name:"list-database" help:"List the database members (works with the daemon stopped)."`
	RecoverFromQuorumLoss ClusterRecoverCmd      `cmd:"" name:"recover-from-quorum-loss" help:"Make this member the only database voter after losing quorum (daemon stopped)."`
	Fingerprint           ClusterFingerprintCmd  `cmd:"" help:"Print the cluster certificate's fingerprint."`
}

// ClusterListCmd lists members, as `lxc cluster list`.
type ClusterListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists every member. On a blocked member it says so and on which members it waits.
func (c *ClusterListCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	ctx := context.Background()
	cl := g.client()
	ms, err := cl.Members(ctx)
	if err != nil {
		if s, _, serr := cl.Server(ctx); serr == nil && s.Environment.Blocked {
			return fmt.Errorf("%s", s.Environment.Message)
		}
		return err
	}
	return output.Render(g.Stdout, c.Format, ms, func() ([]string, [][]string) { return output.MemberTable(ms) })
}

// ClusterShowCmd shows one member.
type ClusterShowCmd struct {
	Name   string        `arg:""`
	Format output.Format `help:"table, json or yaml." default:"yaml"`
}

// Run shows the member.
func (c *ClusterShowCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	m, err := g.client().Member(context.Background(), c.Name)
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, m, func() ([]string, [][]string) { return output.MemberTable([]api.ClusterMember{*m}) })
}

// ClusterRemoveCmd removes a member.
type ClusterRemoveCmd struct {
	Name  string `arg:""`
	Force bool   `help:"Remove a member that cannot be reached (last resort)."`
	Yes   bool   `help:"Do not ask for confirmation."`
}

// Run asks for confirmation of --force, then removes.
func (c *ClusterRemoveCmd) Run(g *Globals) error {
	if c.Force && !c.Yes {
		msg := fmt.Sprintf("Forcefully removing %q deletes its rows from the database without contacting it.\n"+
			"Do this only for a member that is gone for good. Continue? (yes/no) [default=no]: ", c.Name)
		if !confirm(g, msg) {
			return fmt.Errorf("aborted: %s was not removed", c.Name)
		}
	}
	if err := g.client().RemoveMember(context.Background(), c.Name, c.Force); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Member %s removed\n", c.Name)
	return nil
}

// confirm asks a yes/no question on the CLI's streams.
func confirm(g *Globals, question string) bool {
	fmt.Fprint(g.Stdout, question)
	line, _ := bufio.NewReader(g.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// ClusterAddCmd prints a join token for a new member.
type ClusterAddCmd struct {
	Name string `arg:""`
}

// Run issues the token.
func (c *ClusterAddCmd) Run(g *Globals) error {
	t, err := g.client().CreateToken(context.Background(), c.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "Member %s join token (one use, expires %s):\n", c.Name, t.ExpiresAt.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintln(g.Stdout, t.Token)
	return nil
}

// ClusterListTokensCmd lists outstanding tokens (never their secrets).
type ClusterListTokensCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the tokens.
func (c *ClusterListTokensCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	ts, err := g.client().Tokens(context.Background())
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, ts, func() ([]string, [][]string) {
		rows := [][]string{}
		for _, t := range ts {
			rows = append(rows, []string{t.ServerName, t.ExpiresAt.Format("2006/01/02 15:04 MST")})
		}
		return []string{"NAME", "EXPIRES AT"}, rows
	})
}

// ClusterRevokeTokenCmd revokes a token.
type ClusterRevokeTokenCmd struct {
	Name string `arg:""`
}

// Run revokes it.
func (c *ClusterRevokeTokenCmd) Run(g *Globals) error {
	return g.client().RevokeToken(context.Background(), c.Name)
}

// ClusterFingerprintCmd prints the cluster certificate's fingerprint, to confirm a join.
type ClusterFingerprintCmd struct{}

// Run reads DIR/cluster.crt.
func (c *ClusterFingerprintCmd) Run(g *Globals) error {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cluster.crt"))
	if err != nil {
		return fmt.Errorf("this member has no cluster certificate: %w", err)
	}
	fp, err := pki.FingerprintPEM(b)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.Stdout, fp)
	return nil
}
