package controller

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

// recoverPlan (run once) picks the surviving database member with the newest raft log
// (highest term, then index) among the hosts that answered list-database (registered in the
// var named by args.facts), or the member named by args.member; it says which and why.
func (d Deps) recoverPlan(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	factsVar, _ := t.Args.String("facts", "db")
	chosen, _ := t.Args.String("member", "")
	hosts, err := playHosts(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	var views []dbView
	var unreachable, fresh []string
	for _, h := range hosts {
		vars, err := hostVars(t, h)
		if err != nil {
			return playbooks.Result{}, err
		}
		v, ok := readDBView(vars[factsVar])
		switch {
		case ok:
			v.host, v.name = h, strVar(vars, "node_name", h)
			views = append(views, v)
		case vars[factsVar] != nil:
			fresh = append(fresh, h) // answered over SSH but holds no agent data
		default:
			unreachable = append(unreachable, h)
		}
	}
	survivor, why, err := pickSurvivor(views, chosen)
	if err != nil {
		return playbooks.Result{}, err
	}
	others := []any{}
	for _, v := range views {
		if v.host != survivor.host {
			others = append(others, v.host)
		}
	}
	rejoin := append(append([]any{}, others...), toAny(fresh)...)
	return playbooks.Result{Msg: fmt.Sprintf("recover on %s: %s", survivor.host, why),
		Data: map[string]any{"survivor": survivor.host, "survivor_name": survivor.name, "others": others,
			"fresh": toAny(fresh), "rejoin": rejoin, "unreachable": toAny(unreachable), "why": why}}, nil
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

// pickSurvivor chooses among database members the one with the newest log.
func pickSurvivor(views []dbView, chosen string) (dbView, string, error) {
	var cands []dbView
	for _, v := range views {
		if isDatabaseMember(v) {
			cands = append(cands, v)
		}
		if chosen != "" && (v.host == chosen || v.name == chosen) {
			return v, "chosen with --member (last raft index " + fmt.Sprint(v.info.LastIndex) + ", term " + fmt.Sprint(v.info.LastTerm) + ")", nil
		}
	}
	if chosen != "" {
		return dbView{}, "", fmt.Errorf("--member %s did not answer list-database", chosen)
	}
	if len(cands) == 0 {
		return dbView{}, "", fmt.Errorf("no reachable host is a database member: nothing to recover from")
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i].info, cands[j].info
		if a.LastTerm != b.LastTerm {
			return a.LastTerm > b.LastTerm
		}
		return a.LastIndex > b.LastIndex
	})
	best := cands[0]
	why := fmt.Sprintf("newest raft log among %d surviving database member(s): index %d, term %d", len(cands), best.info.LastIndex, best.info.LastTerm)
	return best, why, nil
}

func isDatabaseMember(v dbView) bool {
	for _, m := range v.info.Members {
		if m.Name == v.name && m.Role == "voter" {
			return true
		}
	}
	return false
}

// lostWait bounds the wait for the recovered survivor to mark the lost members OFFLINE.
const lostWait = 15 * time.Second

// clusterRemoveLost (run once, through the recovered member) removes with --force every
// member that is OFFLINE, except the members of the inventory hosts in keep_hosts.
func (d Deps) clusterRemoveLost(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	via, err := t.Args.Required("via")
	if err != nil {
		return playbooks.Result{}, err
	}
	fp, err := t.Args.Required("fingerprint")
	if err != nil {
		return playbooks.Result{}, err
	}
	keep, _ := t.Args.StringList("keep_hosts")
	kept := map[string]bool{}
	for _, h := range append(keep, via) {
		vars, err := hostVars(t, h)
		if err != nil {
			return playbooks.Result{}, err
		}
		kept[strVar(vars, "node_name", h)] = true
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
			case kept[m.ServerName]:
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
		return playbooks.Result{Msg: "no lost member"}, nil
	}
	cl, err := d.apiClient(t, via, fp)
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
