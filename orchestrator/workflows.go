package orchestrator

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"orch/orchestrator/modules"
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
		return code, modules.DowngradeSummary(ds, "upgrade"), err
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
func upgradePlanSummary(plan []modules.UpgradeStep) string {
	if len(plan) == 0 {
		return "the pre-flight did not run, so there is no plan"
	}
	for _, st := range plan {
		if !st.Done {
			return "would upgrade to " + st.To + " " + modules.PlanSummary(plan)
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

// Recover runs the built-in disaster-recovery playbook. Hosts unreachable from the start
// are the lost ones a recovery expects: a run where nothing failed otherwise succeeds (exit
// 0), and the summary names them.
func Recover(ctx context.Context, opts Options, ro RecoverOptions) (int, string, error) {
	if opts.ExtraVars == nil {
		opts.ExtraVars = map[string]any{}
	}
	opts.ExtraVars["rejoin"] = ro.Rejoin
	if ro.Member != "" {
		opts.ExtraVars["recover_member"] = ro.Member
	}
	recap, code, err := RunBuiltin(ctx, "recover", opts)
	lost, ok := lostFromStart(recap)
	if code == playbooks.ExitUnreachable && ok && err == nil {
		code = playbooks.ExitOK
	}
	if code == 0 {
		msg := "Recovered: the cluster is writable again."
		if opts.Check {
			msg = "Check mode: the plan above changed nothing."
		}
		if len(lost) > 0 {
			msg += " Unreachable, as lost hosts are: " + strings.Join(lost, ", ") +
				" (removed from the cluster and cut off; if they come back, `orch recover --rejoin` wipes and rejoins them)."
		}
		return code, msg, err
	}
	return code, "Recovery stopped: " + failedHosts(recap) + ". Read the task output above; re-running `orch recover` is safe.", err
}

// lostFromStart lists the hosts that were unreachable without having done anything (lost
// before the run), and reports whether every other host went through without failing.
func lostFromStart(r *playbooks.Recap) ([]string, bool) {
	if r == nil || r.Aborted {
		return nil, false
	}
	var lost []string
	for _, h := range r.HostNames() {
		st := r.Hosts[h]
		switch {
		case st.Failed > 0:
			return nil, false
		case st.Unreachable > 0 && st.Ok == 0 && st.Changed == 0:
			lost = append(lost, h)
		case st.Unreachable > 0:
			return nil, false // lost half-way: the recovery may not have finished there
		}
	}
	return lost, true
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
