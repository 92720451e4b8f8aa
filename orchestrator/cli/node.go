package cli

import (
	"context"
	"os/signal"
	"syscall"

	"orch/orchestrator"
)

// NodeCmd runs the per-node agent CLI on one host over SSH.
type NodeCmd struct {
	Name string   `arg:"" help:"Inventory host."`
	Args []string `arg:"" passthrough:"" help:"nodeagent arguments, after --."`
}

// Run streams the command's output and passes its exit code through.
func (c *NodeCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	args := c.Args
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	code, err := orchestrator.Node(ctx, g.options(), c.Name, args, g.Stdin, g.Stdout, g.Stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}
