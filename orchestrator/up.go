package orchestrator

import (
	"context"
	"fmt"
	"strings"

	"orch/orchestrator/modules"
)

// Version is orch's release version.
var Version = "0.1.0"

// Up runs the built-in `up` playbook: push and start the agent on every host, bootstrap
// when no host is a member yet, join the others through a live member. It returns Ansible's
// exit code and a one-line summary that says whether anything changed.
func Up(ctx context.Context, opts Options) (int, string, error) {
	recap, findings, code, err := runBuiltin(ctx, "up", opts)
	if recap == nil {
		return code, "", err
	}
	refused := map[string]bool{}
	var downgrades []modules.Downgrade
	if findings != nil {
		downgrades = findings.Downgrades()
	}
	for _, d := range downgrades {
		refused[d.Host] = true
	}
	var changed, bad, good []string
	for _, h := range recap.HostNames() {
		s := recap.Hosts[h]
		if s.Changed > 0 {
			changed = append(changed, h)
		}
		switch {
		case refused[h]:
		case s.Failed > 0 || s.Unreachable > 0:
			bad = append(bad, h)
		default:
			good = append(good, h)
		}
	}
	switch {
	case len(downgrades) > 0:
		return code, modules.DowngradeSummary(downgrades, "up") + otherHosts(bad, good), err
	case len(bad) > 0:
		return code, "Not converged: " + strings.Join(bad, ", ") + " failed or unreachable." + otherHosts(nil, good), err
	case opts.Check && len(changed) > 0:
		return code, "Would change: " + strings.Join(changed, ", "), err
	case len(changed) == 0:
		return code, "Converged: nothing changed.", err
	}
	return code, "Converged: changed " + strings.Join(changed, ", ") + ".", err
}

// otherHosts completes a failure summary with the hosts that failed otherwise and those
// that converged, naming them; it says nothing of hosts that do not exist.
func otherHosts(bad, good []string) string {
	var out string
	if len(bad) > 0 {
		out += fmt.Sprintf(" Also failed or unreachable: %s.", strings.Join(bad, ", "))
	}
	if len(good) > 0 {
		out += fmt.Sprintf(" Converged: %s.", strings.Join(good, ", "))
	}
	return out
}
