package modules

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ErrDowngrade is the error of a host (or member) whose agent is newer than the agent
// offered: pushing it would stop a cluster that runs a newer schema.
var ErrDowngrade = errors.New("refusing to downgrade")

// Findings collect, across one run's modules, what the run's summary must say beyond the
// recap's counters: the hosts refused a downgrade and the rolling upgrade's plan. One per
// run; safe for concurrent use.
type Findings struct {
	mu         sync.Mutex
	downgrades []Downgrade
	plan       []UpgradeStep
}

// Downgrade is one host whose agent would have been downgraded.
type Downgrade struct {
	// Host is the inventory host; Member its member name when known.
	Host, Member string
	// Running is the version the host runs; Offered the version of Src.
	Running, Offered string
	// Src is the agent binary that was offered (--agent).
	Src string
}

// UpgradeStep is one member of a rolling upgrade's plan, in the order it is upgraded.
type UpgradeStep struct {
	// Host is the inventory host; Member its member name.
	Host, Member string
	// From is the version the member runs; To the new agent's.
	From, To string
	// Done: the member already runs To and is skipped.
	Done bool
}

func (f *Findings) addDowngrade(d Downgrade) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.downgrades {
		if x.Host == d.Host && x.Member == d.Member {
			return
		}
	}
	f.downgrades = append(f.downgrades, d)
}

func (f *Findings) setPlan(p []UpgradeStep) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan = append([]UpgradeStep(nil), p...)
}

// Downgrades are the refused downgrades, by host.
func (f *Findings) Downgrades() []Downgrade {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]Downgrade(nil), f.downgrades...)
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// Plan is the rolling upgrade's plan, in upgrade order (nil when no pre-flight ran).
func (f *Findings) Plan() []UpgradeStep {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]UpgradeStep(nil), f.plan...)
}

// DowngradeSummary says which hosts refused the offered agent and what to run instead;
// cmd is the command that was run ("up" or "upgrade"). It is "" without refusals.
func DowngradeSummary(ds []Downgrade, cmd string) string {
	if len(ds) == 0 {
		return ""
	}
	byVersion := map[string][]string{}
	var versions []string
	for _, d := range ds {
		if _, ok := byVersion[d.Running]; !ok {
			versions = append(versions, d.Running)
		}
		byVersion[d.Running] = append(byVersion[d.Running], hostLabel(d.Host, d.Member))
	}
	var runs []string
	for _, v := range versions {
		verb := "runs"
		if len(byVersion[v]) > 1 {
			verb = "run"
		}
		runs = append(runs, fmt.Sprintf("%s %s agent %s", strings.Join(byVersion[v], ", "), verb, v))
	}
	src, offered := ds[0].Src, ds[0].Offered
	advice := fmt.Sprintf("run `orch %s --agent PATH` with an agent at least as new as the cluster's", cmd)
	if cmd == "up" {
		advice = "run `orch up --agent PATH` with the agent the cluster runs (the one `orch upgrade` installed)"
	}
	return fmt.Sprintf("Refused to downgrade, nothing was changed: %s, newer than the offered %s %s. To keep the cluster's version, %s; "+
		"to downgrade on purpose (only if the schemas match), run `orch upgrade --agent %s --force`.",
		strings.Join(runs, "; "), src, offered, advice, src)
}

// PlanSummary describes a rolling upgrade's plan: which members, in which order, from
// which version to which.
func PlanSummary(plan []UpgradeStep) string {
	var todo, done []string
	for _, s := range plan {
		if s.Done {
			done = append(done, hostLabel(s.Host, s.Member))
			continue
		}
		todo = append(todo, fmt.Sprintf("%d. %s: %s -> %s", len(todo)+1, hostLabel(s.Host, s.Member), s.From, s.To))
	}
	out := "no member to upgrade"
	if len(todo) > 0 {
		out = "in this order: " + strings.Join(todo, "; ")
	}
	if len(done) > 0 {
		out += "; already on the new version: " + strings.Join(done, ", ")
	}
	return out
}

// hostLabel names an inventory host and, when it differs, its member.
func hostLabel(host, member string) string {
	switch {
	case host == "":
		return "member " + member
	case member == "" || member == host:
		return host
	}
	return fmt.Sprintf("%s (member %s)", host, member)
}
