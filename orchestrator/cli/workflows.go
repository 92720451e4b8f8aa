package cli

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"orch/nodeagent/api/verbs"
	"orch/orchestrator"
)

// UpgradeCmd is `orch upgrade`: a rolling upgrade to a new agent binary.
type UpgradeCmd struct {
	Agent  string `required:"" help:"The new nodeagent binary." type:"existingfile"`
	Serial int    `help:"Members upgraded at once." default:"1"`
	Force  bool   `help:"Allow a downgrade."`
	Check  bool   `help:"Print the plan without changing anything."`
	Format string `help:"Output: text or json." default:"text" enum:"text,json"`
}

// Run upgrades member by member.
func (c *UpgradeCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := g.options()
	opts.AgentBinary, opts.Check, opts.Format = c.Agent, c.Check, c.Format
	code, summary, err := orchestrator.Upgrade(ctx, opts, orchestrator.UpgradeOptions{Serial: c.Serial, Force: c.Force})
	return finish(g, c.Format, code, summary, err)
}

// RecoverCmd is `orch recover`: disaster recovery after losing quorum.
type RecoverCmd struct {
	Member string `help:"Recover on this member instead of the one with the newest log."`
	Rejoin bool   `help:"Wipe and join the reachable hosts that are not members."`
	Yes    bool   `help:"Do not ask for confirmation."`
	Format string `help:"Output: text or json." default:"text" enum:"text,json"`
}

// Run recovers.
func (c *RecoverCmd) Run(g *Globals) error {
	if !c.Yes {
		q := "This makes one surviving member the only database member and removes the lost members for good"
		if c.Rejoin {
			q += ", and wipes and rejoins the other reachable hosts"
		}
		if !verbs.Confirm(g.Stdin, g.Stdout, q+". Continue? (yes/no) [default=no]: ") {
			return fmt.Errorf("aborted: nothing changed")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := g.options()
	opts.Format = c.Format
	code, summary, err := orchestrator.Recover(ctx, opts, orchestrator.RecoverOptions{Member: c.Member, Rejoin: c.Rejoin})
	return finish(g, c.Format, code, summary, err)
}

// finish prints a run's summary and turns its exit code into the command's.
func finish(g *Globals, format string, code int, summary string, err error) error {
	if summary != "" && format != "json" {
		fmt.Fprintln(g.Stdout, summary)
	}
	if err != nil && code <= 1 {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}
