package orchestrator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"orch/modules/controller"
	"orch/playbooks"
)

// UpgradeOptions tune `orch upgrade`.
type UpgradeOptions struct {
	// Serial is how many members are upgraded at once (default 1).
	Serial int
	// Force allows a downgrade.
	Force bool
}

// Upgrade runs the built-in rolling-upgrade playbook with opts.AgentBinary as the new agent.
// On failure the summary says which member failed, what state the cluster is in and how to
// continue.
func Upgrade(ctx context.Context, opts Options, uo UpgradeOptions) (int, string, error) {
	if opts.ExtraVars == nil {
		opts.ExtraVars = map[string]any{}
	}
	opts.ExtraVars["upgrade_force"] = uo.Force
	s, err := openSession(opts)
	if err != nil {
		return 1, "", err
	}
	defer s.close()
	pb, err := loadBuiltin("upgrade")
	if err != nil {
		return 1, "", err
	}
	if uo.Serial > 0 {
		for _, p := range pb.Plays {
			if p.Serial != nil {
				p.Serial = []any{uo.Serial}
			}
		}
	}
	recap, err := s.run(ctx, pb)
	code := playbooks.ExitCode(recap, err)
	if ds := s.findings.Downgrades(); len(ds) > 0 {
		return code, controller.DowngradeSummary(ds, "upgrade"), err
	}
	if code == 0 {
		if opts.Check {
			return code, "Check mode, nothing was changed: " + upgradePlanSummary(s.findings.Plan()) + ".", err
		}
		return code, "Upgrade complete: every member runs the new version and is operational.", err
	}
	return code, s.clusterState(ctx, "Upgrade stopped: "+failedHosts(recap)+".",
		"Fix the cause, then re-run `orch upgrade` with the same binary: members already upgraded are skipped."), err
}

// upgradePlanSummary says what a dry run of the upgrade would do.
func upgradePlanSummary(plan []controller.UpgradeStep) string {
	if len(plan) == 0 {
		return "the pre-flight did not run, so there is no plan"
	}
	for _, st := range plan {
		if !st.Done {
			return "would upgrade to " + st.To + " " + controller.PlanSummary(plan)
		}
	}
	return "every member already runs " + plan[0].To
}

// RecoverOptions tune `orch recover`.
type RecoverOptions struct {
	// Member forces the survivor to recover on.
	Member string
	// Rejoin wipes and joins the reachable hosts that are not members.
	Rejoin bool
}

// Recover runs the built-in disaster-recovery playbook.
func Recover(ctx context.Context, opts Options, ro RecoverOptions) (int, string, error) {
	if opts.ExtraVars == nil {
		opts.ExtraVars = map[string]any{}
	}
	opts.ExtraVars["rejoin"] = ro.Rejoin
	if ro.Member != "" {
		opts.ExtraVars["recover_member"] = ro.Member
	}
	recap, code, err := RunBuiltin(ctx, "recover", opts)
	if code == 0 {
		return code, "Recovered: the cluster is writable again.", err
	}
	return code, "Recovery stopped: " + failedHosts(recap) + ". Read the task output above; re-running `orch recover` is safe.", err
}

// failedHosts names the hosts that failed or were unreachable in a run.
func failedHosts(r *playbooks.Recap) string {
	if r == nil {
		return "the run did not start"
	}
	var bad []string
	for _, h := range r.HostNames() {
		if st := r.Hosts[h]; st.Failed > 0 || st.Unreachable > 0 {
			what := "failed"
			if st.Unreachable > 0 {
				what = "unreachable"
			}
			bad = append(bad, h+" "+what)
		}
	}
	if len(bad) == 0 {
		return "the run was aborted"
	}
	return strings.Join(bad, ", ")
}

// clusterState describes the members as the cluster API sees them, for a failure message.
func (s *session) clusterState(ctx context.Context, head, next string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, done, err := Cluster(ctx, s.opts)
	if err != nil {
		return head + " The cluster could not be asked for its state (" + err.Error() + "). " + next
	}
	defer done()
	ms, err := cl.Members(ctx)
	if err != nil {
		return head + " " + next
	}
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s %s %s", m.ServerName, strings.ToUpper(m.Status), m.Version))
	}
	sort.Strings(parts)
	return head + " Cluster now: " + strings.Join(parts, "; ") + ". " + next
}
