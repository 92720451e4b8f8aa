package cli

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"orch/nodeagent/api/verbs"
	"orch/orchestrator"
)

// ResetCmd is `orch reset`: take the agent off hosts (k0sctl's name).
type ResetCmd struct {
	Purge  bool   `help:"Also remove the agent directory, the agent's instances, bridges and pool mounts."`
	Force  bool   `help:"Go ahead even when the members that stay would lose quorum, or the cluster does not answer."`
	Yes    bool   `help:"Do not ask for confirmation."`
	Check  bool   `help:"Show what would change without changing anything."`
	Format string `help:"Output: text or json." default:"text" enum:"text,json"`
}

// Run resets the selected hosts (all, or --limit).
func (c *ResetCmd) Run(g *Globals) error {
	if !c.Yes && !c.Check {
		q := "This removes the selected hosts from the cluster (all of it if every member is selected) and takes the agent off them"
		if c.Purge {
			q += ", deleting their instances and agent directories"
		}
		if !verbs.Confirm(g.Stdin, g.Stdout, q+". Continue? (yes/no) [default=no]: ") {
			return fmt.Errorf("aborted: nothing changed")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := g.options()
	opts.Check, opts.Format = c.Check, c.Format
	code, summary, err := orchestrator.Reset(ctx, opts, orchestrator.ResetOptions{Purge: c.Purge, Force: c.Force})
	return finish(g, c.Format, code, summary, err)
}
