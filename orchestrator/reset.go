package orchestrator

import "context"

// ResetOptions tune `orch reset`.
type ResetOptions struct {
	// Purge also removes the agent directory and what the agent made on the host.
	Purge bool
	// Force goes ahead when the members staying would lose quorum, or the cluster does not
	// answer.
	Force bool
}

// Reset runs the built-in reset playbook on the inventory's hosts (--limit selects some):
// members leave the cluster cleanly, then the agents are stopped and their units removed.
func Reset(ctx context.Context, opts Options, ro ResetOptions) (int, string, error) {
	if opts.ExtraVars == nil {
		opts.ExtraVars = map[string]any{}
	}
	opts.ExtraVars["reset_purge"], opts.ExtraVars["reset_force"] = ro.Purge, ro.Force
	recap, code, err := RunBuiltin(ctx, "reset", opts)
	switch {
	case code == 0 && opts.Check:
		return code, "Check mode, nothing was changed.", err
	case code == 0:
		return code, "Reset: the agent is off the selected hosts.", err
	}
	return code, "Reset stopped: " + failedHosts(recap) + ". Read the task output above; re-running `orch reset` is safe.", err
}
