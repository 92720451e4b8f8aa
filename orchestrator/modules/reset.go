package modules

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/orchestrator/agentctl"
	"orch/playbooks"
)

// ErrQuorum means a reset would leave the rest of the cluster without a majority of its
// members online.
var ErrQuorum = errors.New("the reset would take away the cluster's quorum")

// resetPlan (run once) decides how the play's hosts leave: when they hold every member of
// the cluster, the whole cluster goes (no member is removed, the agents just go); otherwise
// the selected members are removed one by one through a member that stays, which is
// refused without force when the members staying would not have a majority ONLINE.
func (d Deps) resetPlan(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	factsVar, _ := t.Args.String("facts", "agent")
	force, _ := t.Args.Bool("force", false)
	selected, err := playHosts(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	all, err := allHosts(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	fp, leaving, unknown, err := selectedMembers(t, selected, factsVar)
	if err != nil {
		return playbooks.Result{}, err
	}
	var stay []string
	for _, h := range all {
		if !slices.Contains(selected, h) {
			stay = append(stay, h)
		}
	}
	// A host that cannot say whether it is a member may hold a member that must leave
	// cleanly, unless every host goes.
	if len(unknown) > 0 && len(stay) > 0 && !force {
		return playbooks.Result{}, fmt.Errorf("cannot tell whether %s is a cluster member, so it cannot leave cleanly; --force removes the agent anyway", strings.Join(unknown, "; "))
	}
	data := map[string]any{"leave": []any{}, "via": "", "fingerprint": fp, "whole": len(stay) == 0}
	if fp == "" {
		return playbooks.Result{Msg: "no selected host is a cluster member", Data: data}, nil
	}
	ms, err := d.anyMembers(ctx, t, append(slices.Clone(stay), selected...), fp)
	if err != nil {
		if len(stay) == 0 || force {
			data["whole"] = len(stay) == 0
			return playbooks.Result{Msg: "the cluster does not answer (" + err.Error() + "): removing the agents only", Data: data}, nil
		}
		return playbooks.Result{}, fmt.Errorf("cannot ask the cluster which members would stay (%w); --force removes the agents anyway", err)
	}
	names := map[string]string{} // member name -> inventory host
	for _, h := range all {
		names[d.memberName(h)] = h
	}
	var staying, online []string
	var via string
	for _, m := range ms {
		if slices.Contains(leaving, m.ServerName) {
			continue
		}
		staying = append(staying, m.ServerName)
		if m.Status == api.StatusOnline {
			online = append(online, m.ServerName)
			if h, ok := names[m.ServerName]; ok && via == "" {
				via = h
			}
		}
	}
	if len(staying) == 0 {
		data["whole"] = true
		return playbooks.Result{Msg: "every member is reset: the cluster goes with them", Data: data}, nil
	}
	if 2*len(online) <= len(staying) && !force {
		return playbooks.Result{}, fmt.Errorf("%w: removing %s leaves %s, of which only %d ONLINE (%s); use --force to go ahead",
			ErrQuorum, strings.Join(leaving, ", "), strings.Join(staying, ", "), len(online), strings.Join(online, ", "))
	}
	if via == "" {
		return playbooks.Result{}, fmt.Errorf("no ONLINE member that stays is in the inventory (staying: %s)", strings.Join(staying, ", "))
	}
	data["leave"], data["via"] = toAny(leaving), via
	return playbooks.Result{Msg: fmt.Sprintf("remove %s through %s; %s stay", strings.Join(leaving, ", "), via, strings.Join(staying, ", ")), Data: data}, nil
}

// selectedMembers reads the selected hosts' agent facts: the cluster's fingerprint, the
// member names among them, and the hosts whose agent is installed but did not say what it
// is (e.g. "host1 (nodeagent info: ...)"). A host without the agent binary is no member.
func selectedMembers(t *playbooks.TaskContext, selected []string, factsVar string) (string, []string, []string, error) {
	var fp string
	var names, unknown []string
	byCluster := map[string][]string{}
	for _, h := range selected {
		vars, err := hostVars(t, h)
		if err != nil {
			return "", nil, nil, err
		}
		f, ok := readFacts(vars[factsVar])
		switch {
		case ok && f.Initialised:
			fp = f.Fingerprint
			byCluster[fp] = append(byCluster[fp], h)
			names = append(names, f.ServerName)
		case !ok && !agentMissing(vars[factsVar]):
			unknown = append(unknown, fmt.Sprintf("%s (%s)", h, registeredMsg(vars[factsVar])))
		}
	}
	if len(byCluster) > 1 {
		return "", nil, nil, fmt.Errorf("%w: %s", ErrSplitBrain, describeClusters(byCluster))
	}
	return fp, names, unknown, nil
}

// agentMissing reports whether a failed agent command failed because the binary is not
// there (the shell's "not found", exit 127).
func agentMissing(reg any) bool {
	msg := registeredMsg(reg)
	return strings.Contains(msg, "not found") || strings.Contains(msg, "No such file")
}

func registeredMsg(reg any) string {
	m, _ := reg.(map[string]any)
	s, _ := m["msg"].(string)
	if s == "" {
		return "no answer"
	}
	return s
}

// clusterLeave (run once) removes the members in args.members one by one through args.via.
func (d Deps) clusterLeave(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	via, fp, err := viaArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	members, err := t.Args.StringList("members")
	if err != nil || len(members) == 0 {
		return playbooks.Result{Msg: "no member to remove"}, err
	}
	force, _ := t.Args.Bool("force", false)
	cl, err := d.apiClient(via, fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	defer cl.Close()
	for _, m := range members {
		err := t.Change("remove member "+m+" from the cluster", func() error {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return cl.RemoveMember(cctx, m, force)
		})
		if err != nil {
			return playbooks.Result{}, fmt.Errorf("removing %s through %s: %w", m, via, err)
		}
	}
	return playbooks.Result{Msg: "removed " + strings.Join(members, ", ")}, nil
}

// agentRemove takes the agent off the host (unit or detached daemon); purge: true also
// removes its containers, pools' mounts, bridges and directory.
func (d Deps) agentRemove(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	dir := a.Dir
	purge, err := t.Args.Bool("purge", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	what := "stop the agent and remove its unit"
	if purge {
		what += ", its instances, bridges, mounts and " + dir
	}
	err = t.ChangeIf(what, func() (bool, error) { return agentctl.Uninstall(ctx, conn, dir, purge) })
	return playbooks.Result{}, err
}
