package cli

import (
	"context"
	"os/signal"
	"syscall"

	"orch/orchestrator"
)

// UpCmd is `orch up`.
type UpCmd struct {
	Agent   string `help:"nodeagent binary to push (default: the one next to orch)." type:"path"`
	Preseed string `help:"Preseed file (the guide's format) with the cluster-wide settings." type:"existingfile"`
	Check   bool   `help:"Show what would change without changing anything."`
	// NoInstall refuses to install missing packages (LXC, dnsmasq, nftables, pool tools).
	NoInstall bool   `help:"Install nothing: fail, listing per host the packages the cluster needs that are missing."`
	Format    string `help:"Output: text or json." default:"text" enum:"text,json"`
}

// Run converges the cluster and exits with Ansible's codes (2 failed, 4 unreachable).
func (c *UpCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := g.options()
	opts.AgentBinary, opts.Preseed, opts.Check, opts.Format = c.Agent, c.Preseed, c.Check, c.Format
	if c.NoInstall {
		if opts.ExtraVars == nil {
			opts.ExtraVars = map[string]any{}
		}
		opts.ExtraVars["orch_install"] = false
	}
	code, summary, err := orchestrator.Up(ctx, opts)
	return finish(g, c.Format, code, summary, err)
}
