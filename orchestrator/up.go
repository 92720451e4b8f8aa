package orchestrator

import (
	"context"
	"fmt"
	"strings"
)

// Version is orch's release version.
var Version = "0.1.0"

// Up runs the built-in `up` playbook: push and start the agent on every host, bootstrap
// when no host is a member yet, join the others through a live member. It returns Ansible's
// exit code and a one-line summary that says whether anything changed.
func Up(ctx context.Context, opts Options) (int, string, error) {
	recap, code, err := RunBuiltin(ctx, "up", opts)
	if recap == nil {
		return code, "", err
	}
	var changed, bad []string
	for _, h := range recap.HostNames() {
		s := recap.Hosts[h]
		if s.Changed > 0 {
			changed = append(changed, h)
		}
		if s.Failed > 0 || s.Unreachable > 0 {
			bad = append(bad, h)
		}
	}
	switch {
	case len(bad) > 0:
		return code, fmt.Sprintf("Not converged: %s failed or unreachable; the other hosts converged.", strings.Join(bad, ", ")), err
	case opts.Check && len(changed) > 0:
		return code, "Would change: " + strings.Join(changed, ", "), err
	case len(changed) == 0:
		return code, "Converged: nothing changed.", err
	}
	return code, "Converged: changed " + strings.Join(changed, ", ") + ".", err
}
