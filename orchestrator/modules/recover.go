package modules

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// dbView is one host's answer to `nodeagent cluster list-database --format json`.
type dbView struct {
	host string
	name string
	info api.DatabaseInfo
}

// role is this member's raft role in its own view ("" when it holds none).
func (v dbView) role() string {
	for _, m := range v.info.Members {
		if m.Name == v.name {
			return m.Role
		}
	}
	return ""
}

// holdsLog reports whether the member is a voter or a stand-by with a raft log: a
// candidate to recover on. A member cut off by an earlier recovery is not one.
func (v dbView) holdsLog() bool {
	r := v.role()
	return (r == "voter" || r == "standby") && v.info.LastLogIndex > 0 && v.info.CutOff == nil
}

// newerLog orders views by raft log: (last log term, last log index), then the applied
// index; ties keep inventory order.
func newerLog(a, b dbView) bool {
	x, y := a.info, b.info
	if x.LastLogTerm != y.LastLogTerm {
		return x.LastLogTerm > y.LastLogTerm
	}
	if x.LastLogIndex != y.LastLogIndex {
		return x.LastLogIndex > y.LastLogIndex
	}
	return x.LastIndex > y.LastIndex
}

// recoverPlan (run once) picks the member to recover on: among every reachable member of
// the newest cluster epoch that holds a raft log (voters and stand-bys), the one whose log
// ends with the highest (term, index); or the member named by args.member. It prints the
// table it decided from. When the database members that answer as running (the hosts' own
// daemons, and the members their --probe reached) are a majority of the voters, quorum is
// not lost: it refuses, or with args.rejoin plans no recovery and only the rejoin of the
// hosts that are cut off or hold no member.
func (d Deps) recoverPlan(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	factsVar, _ := t.Args.String("facts", "db")
	chosen, _ := t.Args.String("member", "")
	rejoin, _ := t.Args.Bool("rejoin", false)
	views, fresh, unreachable, err := collectViews(t, factsVar)
	if err != nil {
		return playbooks.Result{}, err
	}
	current, stale := splitByEpoch(views)
	if qerr := refuseIfQuorum(current); qerr != nil {
		if !rejoin || chosen != "" {
			return playbooks.Result{}, fmt.Errorf("%w\n%s", qerr, positionTable(views, ""))
		}
		return rejoinPlan(current, stale, fresh, unreachable)
	}
	survivor, why, err := pickSurvivor(current, chosen)
	if err != nil {
		return playbooks.Result{}, fmt.Errorf("%w\n%s", err, positionTable(views, ""))
	}
	others := []any{}
	for _, v := range views {
		if v.host != survivor.host {
			others = append(others, v.host)
		}
	}
	msg := fmt.Sprintf("recover on %s: %s\n%s", survivor.host, why, positionTable(views, survivor.host))
	return playbooks.Result{Msg: msg, Data: map[string]any{"recover": true, "survivor": survivor.host, "survivor_name": survivor.name,
		"others": others, "fresh": toAny(fresh), "rejoin": append(append([]any{}, others...), toAny(fresh)...),
		"unreachable": toAny(unreachable), "why": why}}, nil
}

// collectViews reads every inventory host's registered list-database answer: members,
// hosts that answered but hold no member, and hosts that could not be asked (including
// those the play already dropped as unreachable).
func collectViews(t *playbooks.TaskContext, factsVar string) (views []dbView, fresh, unreachable []string, err error) {
	inPlay, err := playHosts(t)
	if err != nil {
		return nil, nil, nil, err
	}
	active := map[string]bool{}
	for _, h := range inPlay {
		active[h] = true
	}
	all, _ := allHosts(t)
	if len(all) == 0 {
		all = inPlay
	}
	for _, h := range all {
		vars, err := hostVars(t, h)
		if err != nil {
			return nil, nil, nil, err
		}
		v, ok := readDBView(vars[factsVar])
		switch {
		case !active[h]:
			unreachable = append(unreachable, h)
		case ok && v.info.Member != "":
			v.host, v.name = h, v.info.Member
			views = append(views, v)
		case ok || vars[factsVar] != nil:
			fresh = append(fresh, h) // answered over SSH but holds no member
		default:
			unreachable = append(unreachable, h)
		}
	}
	return views, fresh, unreachable, nil
}

// splitByEpoch separates the members of the newest cluster epoch from those a recovery cut
// off (or that are behind it): only the former can be recovered on or count for quorum.
func splitByEpoch(views []dbView) (current, stale []dbView) {
	var newest api.Epoch
	for _, v := range views {
		if v.info.CutOff == nil && v.info.Epoch.Number > newest.Number {
			newest = v.info.Epoch
		}
	}
	for _, v := range views {
		if staleReason(v.info, newest) != "" {
			stale = append(stale, v)
		} else {
			current = append(current, v)
		}
	}
	return current, stale
}

// rejoinPlan is the plan when quorum is not lost and --rejoin was given: no recovery; the
// cut-off members are stopped and, with the hosts holding no member, wiped and joined
// through a running member.
func rejoinPlan(current, stale []dbView, fresh, unreachable []string) (playbooks.Result, error) {
	var via dbView
	for _, v := range current {
		if v.info.Running {
			via = v
			break
		}
	}
	if via.host == "" {
		return playbooks.Result{}, fmt.Errorf("quorum is not lost but no reachable member's agent runs to rejoin through")
	}
	others := []any{}
	for _, v := range stale {
		others = append(others, v.host)
	}
	rejoin := append(append([]any{}, others...), toAny(fresh)...)
	msg := fmt.Sprintf("quorum is not lost: no recovery; rejoin %s through %s\n%s", joinAny(rejoin), via.host, positionTable(append(current, stale...), ""))
	return playbooks.Result{Msg: msg, Data: map[string]any{"recover": false, "survivor": via.host, "survivor_name": via.name,
		"others": others, "fresh": toAny(fresh), "rejoin": rejoin, "unreachable": toAny(unreachable), "why": "quorum is not lost"}}, nil
}

func joinAny(l []any) string {
	if len(l) == 0 {
		return "nothing"
	}
	var out []string
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return strings.Join(out, ", ")
}

func readDBView(v any) (dbView, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return dbView{}, false
	}
	if failed, _ := m["failed"].(bool); failed {
		return dbView{}, false
	}
	out, _ := m["stdout"].(string)
	var info api.DatabaseInfo
	if out == "" || json.Unmarshal([]byte(out), &info) != nil {
		return dbView{}, false
	}
	return dbView{info: info}, true
}

// pickSurvivor chooses among the members holding a log the one with the newest log.
func pickSurvivor(views []dbView, chosen string) (dbView, string, error) {
	var cands []dbView
	for _, v := range views {
		if chosen != "" && (v.host == chosen || v.name == chosen) {
			return v, fmt.Sprintf("chosen with --member (last log entry %d, term %d)", v.info.LastLogIndex, v.info.LastLogTerm), nil
		}
		if v.holdsLog() {
			cands = append(cands, v)
		}
	}
	if chosen != "" {
		return dbView{}, "", fmt.Errorf("--member %s did not answer list-database", chosen)
	}
	if len(cands) == 0 {
		return dbView{}, "", fmt.Errorf("no reachable host is a database member holding a raft log: nothing to recover from")
	}
	sort.SliceStable(cands, func(i, j int) bool { return newerLog(cands[i], cands[j]) })
	best := cands[0]
	why := fmt.Sprintf("newest raft log among %d reachable database member(s): last entry %d, term %d", len(cands), best.info.LastLogIndex, best.info.LastLogTerm)
	if len(cands) > 1 && !newerLog(best, cands[1]) {
		why += fmt.Sprintf(" (tied with %s: first in inventory order)", cands[1].host)
	}
	return best, why, nil
}

// positionTable is the table the survivor was chosen from, the choice marked with "*".
func positionTable(views []dbView, chosen string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %-1s %-12s %-12s %-9s %-16s %-16s %s", "", "HOST", "MEMBER", "ROLE", "LAST LOG (T/I)", "APPLIED (T/I)", "STATE")
	for _, v := range views {
		mark := ""
		if v.host == chosen {
			mark = "*"
		}
		role := v.role()
		if role == "" {
			role = "spare"
		}
		state := "stopped"
		switch {
		case v.info.CutOff != nil:
			state = "cut off"
		case v.info.Running:
			state = "running"
		}
		fmt.Fprintf(&b, "\n  %-1s %-12s %-12s %-9s %-16s %-16s %s", mark, v.host, v.name, role,
			fmt.Sprintf("%d/%d", v.info.LastLogTerm, v.info.LastLogIndex), fmt.Sprintf("%d/%d", v.info.LastTerm, v.info.LastIndex), state)
	}
	return b.String()
}

// refuseIfQuorum fails when a majority of the voters answered as running: either their own
// daemon answered list-database, or another host's --probe reached them. Such a cluster has
// quorum (or is partitioned from orch), and recovering would split it.
func refuseIfQuorum(views []dbView) error {
	voters := map[string]bool{}
	for _, v := range views {
		for _, m := range v.info.Members {
			if m.Role == "voter" {
				voters[m.Name] = true
			}
		}
	}
	seen := map[string][]string{} // member -> who saw it running
	for _, v := range views {
		if v.info.Running && v.info.CutOff == nil {
			seen[v.name] = append(seen[v.name], v.host+" (its agent)")
		}
		for _, a := range v.info.Alive {
			seen[a] = append(seen[a], v.host)
		}
	}
	var alive []string
	for name, by := range seen {
		if voters[name] {
			alive = append(alive, fmt.Sprintf("%s (seen by %s)", name, strings.Join(by, ", ")))
		}
	}
	sort.Strings(alive)
	if len(voters) == 0 || len(alive) <= len(voters)/2 {
		return nil
	}
	return fmt.Errorf("refusing to recover: %d of %d database voters answer as running members: %s; the cluster still has quorum (or orch is cut off from it), and recovering would split it",
		len(alive), len(voters), strings.Join(alive, "; "))
}

// lostWait bounds the wait for the recovered survivor to mark the lost members OFFLINE.
const lostWait = 15 * time.Second

// clusterRemoveLost (run once, through the recovered member) removes with --force every
// member that is OFFLINE, except the members of the inventory hosts in keep_hosts; with
// only_hosts, only the members of those inventory hosts (when present and OFFLINE).
func (d Deps) clusterRemoveLost(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	via, fp, err := viaArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	keep, _ := t.Args.StringList("keep_hosts")
	only, onlyGiven, err := d.onlyMembers(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	kept := map[string]bool{}
	for _, h := range append(keep, via) {
		a, err := d.agent(h)
		if err != nil {
			return playbooks.Result{}, err
		}
		kept[a.NodeName] = true
	}
	// The restarted survivor marks the other members OFFLINE once it leads (a moment after
	// it starts); until then they may still look ONLINE. Wait for that, within a bound:
	// what is still ONLINE after it is alive and is not removed.
	var lost []string
	deadline := time.Now().Add(lostWait)
	for {
		ms, err := d.listMembers(ctx, t, via, fp)
		if err != nil {
			return playbooks.Result{}, err
		}
		lost = lost[:0]
		pending := 0
		for _, m := range ms {
			switch {
			case kept[m.ServerName], onlyGiven && !only[m.ServerName]:
			case m.Status == api.StatusOffline:
				lost = append(lost, m.ServerName)
			default:
				pending++
			}
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return playbooks.Result{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(lost) == 0 {
		return playbooks.Result{Msg: "no member to remove"}, nil
	}
	cl, err := d.apiClient(via, fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	defer cl.Close()
	for _, name := range lost {
		err := t.Change("remove lost member "+name+" (--force)", func() error { return cl.RemoveMember(ctx, name, true) })
		if err != nil {
			return playbooks.Result{}, fmt.Errorf("removing %s: %w", name, err)
		}
	}
	return playbooks.Result{Msg: "removed " + strings.Join(lost, ", "), Data: map[string]any{"removed": toAny(lost)}}, nil
}

// recoverReport (run once) says what the recovery did to each inventory host, from the
// plan (args.plan) and the removed members (args.removed): the survivor, the members
// stopped and removed (or wiped and rejoined), and the unreachable hosts, expected to be
// lost, which were removed and are cut off should they come back.
func (d Deps) recoverReport(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	p, ok := t.Args["plan"].(map[string]any)
	if !ok {
		return playbooks.Result{}, fmt.Errorf("recover_report: plan (the registered recover_plan result) is required")
	}
	rejoin, _ := t.Args.Bool("rejoin", false)
	survivor, _ := p["survivor"].(string)
	lines := []string{survivor + ": recovered here; it is the only database member, in a new cluster epoch"}
	if recovered, _ := p["recover"].(bool); !recovered {
		lines = []string{survivor + ": running member, quorum not lost: no recovery"}
	}
	other := "agent stopped, member removed; it is cut off: `orch recover --rejoin` wipes and rejoins it"
	if rejoin {
		other = "wiped and joined again"
	}
	for _, h := range anyStrings(p["others"]) {
		lines = append(lines, h+": "+other)
	}
	for _, h := range anyStrings(p["fresh"]) {
		if rejoin {
			lines = append(lines, h+": joined")
		} else {
			lines = append(lines, h+": holds no member; `orch recover --rejoin` joins it")
		}
	}
	for _, h := range anyStrings(p["unreachable"]) {
		lines = append(lines, h+": unreachable (lost): removed from the cluster; if it comes back it is refused as cut off until `orch recover --rejoin` wipes and rejoins it")
	}
	return playbooks.Result{Msg: strings.Join(lines, "\n"), Data: map[string]any{"lines": toAny(lines)}}, nil
}

func anyStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

// onlyMembers reads only_hosts: the member names of those inventory hosts.
func (d Deps) onlyMembers(t *playbooks.TaskContext) (map[string]bool, bool, error) {
	if _, given := t.Args["only_hosts"]; !given {
		return nil, false, nil
	}
	hosts, err := t.Args.StringList("only_hosts")
	if err != nil {
		return nil, false, err
	}
	out := map[string]bool{}
	for _, h := range hosts {
		a, err := d.agent(h)
		if err != nil {
			return nil, false, err
		}
		out[a.NodeName] = true
	}
	return out, true, nil
}
