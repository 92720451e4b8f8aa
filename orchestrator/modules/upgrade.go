package modules

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// compareAgents orders agents as an upgrade does: by schema and API level
// (api.CompareVersions), then by release number.
func compareAgents(a, b api.AgentVersion) int {
	if c := api.CompareVersions(a, b); c != 0 {
		return c
	}
	return compareRelease(a.Version, b.Version)
}

// describeVersion is a version triple as the run's messages show it.
func describeVersion(v api.AgentVersion) string {
	return fmt.Sprintf("%s (schema %d, api %d)", v.Version, v.Schema, v.APILevel)
}

// compareRelease orders dotted release numbers numerically ("0.10.0" > "0.9.1").
func compareRelease(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			fmt.Sscanf(as[i], "%d", &x)
		}
		if i < len(bs) {
			fmt.Sscanf(bs[i], "%d", &y)
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

// localVersion runs the local binary to read its versions.
func localVersion(ctx context.Context, bin string) (api.AgentVersion, error) {
	out, err := exec.CommandContext(ctx, bin, "version", "--format", "json").Output()
	if err != nil {
		return api.AgentVersion{}, fmt.Errorf("reading the version of %s: %w", bin, err)
	}
	var v api.AgentVersion
	if err := json.Unmarshal(out, &v); err != nil {
		return api.AgentVersion{}, fmt.Errorf("version of %s: %w", bin, err)
	}
	return v, nil
}

// upgradePreflight (run once) checks that every member is ONLINE (or BLOCKED: a rollout in
// progress), reads the new binary's versions, and refuses a downgrade unless force. It
// reports the plan: which members, in which order, from which version to which.
func (d Deps) upgradePreflight(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	via, _ := t.Args.String("via", t.Host)
	force, _ := t.Args.Bool("force", false)
	src, _ := t.Args.String("src", d.AgentBinary)
	fp, err := t.Args.Required("fingerprint")
	if err != nil {
		return playbooks.Result{}, err
	}
	newV, err := localVersion(ctx, src)
	if err != nil {
		return playbooks.Result{}, err
	}
	ms, err := d.membersSettled(ctx, t, via, fp, 10*time.Second)
	if err != nil {
		return playbooks.Result{}, err
	}
	hostOf := d.memberHosts(t)
	var offline, pending, done, newer []string
	for _, m := range ms {
		cur := m.AgentVersion()
		switch {
		case m.Status == api.StatusOffline:
			offline = append(offline, m.ServerName)
		case compareAgents(cur, newV) > 0 && !force:
			newer = append(newer, m.ServerName)
			d.Findings.addDowngrade(Downgrade{Host: hostOf[m.ServerName], Member: m.ServerName, Running: describeVersion(cur), Offered: describeVersion(newV), Src: src})
		case compareAgents(cur, newV) == 0:
			done = append(done, m.ServerName)
		default:
			pending = append(pending, m.ServerName)
		}
	}
	if len(newer) > 0 {
		return playbooks.Result{}, fmt.Errorf("%w: member(s) %s run a newer agent than %s %s: a newer schema cannot be read by an older agent (pass --force only if you know the schemas match)",
			ErrDowngrade, strings.Join(newer, ", "), src, describeVersion(newV))
	}
	if len(offline) > 0 {
		return playbooks.Result{}, fmt.Errorf("member(s) %s OFFLINE: bring them back, or remove them with `orch cluster remove --force NAME`, then re-run the upgrade", strings.Join(offline, ", "))
	}
	plan := d.upgradePlan(t, ms, newV)
	d.Findings.setPlan(plan)
	verb := "upgrade"
	if t.Check {
		verb = "check mode, would upgrade"
	}
	msg := fmt.Sprintf("%s to %s: %s", verb, describeVersion(newV), PlanSummary(plan))
	return playbooks.Result{Msg: msg, Data: map[string]any{"pending": toAny(pending), "done": toAny(done),
		"version": newV.Version, "schema_version": newV.Schema, "api_level": newV.APILevel}}, nil
}

// memberHosts maps member names to the inventory hosts that run them (node_name).
func (d Deps) memberHosts(t *playbooks.TaskContext) map[string]string {
	out := map[string]string{}
	hosts, _ := allHosts(t)
	for _, h := range hosts {
		out[d.memberName(h)] = h
	}
	return out
}

// upgradePlan orders the members as the serial play upgrades them: inventory order, then
// the members the inventory does not name (which the play cannot upgrade).
func (d Deps) upgradePlan(t *playbooks.TaskContext, ms []api.ClusterMember, newV api.AgentVersion) []UpgradeStep {
	byName := map[string]api.ClusterMember{}
	for _, m := range ms {
		byName[m.ServerName] = m
	}
	stepOf := func(host string, m api.ClusterMember) UpgradeStep {
		cur := m.AgentVersion()
		return UpgradeStep{Host: host, Member: m.ServerName, From: describeVersion(cur), To: describeVersion(newV), Done: compareAgents(cur, newV) == 0}
	}
	var plan []UpgradeStep
	seen := map[string]bool{}
	hosts, _ := allHosts(t)
	for _, h := range hosts {
		name := d.memberName(h)
		if m, ok := byName[name]; ok && !seen[name] {
			seen[name] = true
			plan = append(plan, stepOf(h, m))
		}
	}
	for _, m := range ms {
		if !seen[m.ServerName] {
			plan = append(plan, stepOf("", m))
		}
	}
	return plan
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// listMembers lists the members through the cluster API, asking via first and then every
// other inventory host: a BLOCKED member (mid-upgrade) refuses the list, a stopped one
// cannot answer.
func (d Deps) listMembers(ctx context.Context, t *playbooks.TaskContext, via, fp string) ([]api.ClusterMember, error) {
	hosts := []string{via}
	if all, err := allHosts(t); err == nil {
		hosts = append(hosts, all...)
	}
	return d.anyMembers(ctx, t, hosts, fp)
}

// membersVia lists the members through one host.
func (d Deps) membersVia(ctx context.Context, t *playbooks.TaskContext, via, fp string) ([]api.ClusterMember, error) {
	cl, err := d.apiClient(via, fp)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.Members(cctx)
}

// allHosts lists every inventory host (groups['all']).
func allHosts(t *playbooks.TaskContext) ([]string, error) {
	g, ok := t.Vars().Get("groups")
	if !ok {
		return nil, fmt.Errorf("groups unavailable")
	}
	var out []string
	switch gs := g.(type) {
	case map[string]any:
		switch l := gs["all"].(type) {
		case []any:
			for _, h := range l {
				out = append(out, fmt.Sprint(h))
			}
		case []string:
			out = l
		}
	case map[string][]string:
		out = gs["all"]
	}
	return out, nil
}

// clusterWait waits until the cluster, seen through via, reaches a state: `member` (this
// host's member) is back — ONLINE or BLOCKED — on version `version`; or, with `all: true`,
// every member is ONLINE (not BLOCKED) on that version.
func (d Deps) clusterWait(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	fp, err := t.Args.Required("fingerprint")
	if err != nil {
		return playbooks.Result{}, err
	}
	want, _ := t.Args.String("version", "")
	all, _ := t.Args.Bool("all", false)
	timeout, _ := t.Args.Int("timeout", 60)
	member := d.memberName(t.Host)
	vias, err := t.Args.StringList("via")
	if err != nil || len(vias) == 0 {
		return playbooks.Result{}, fmt.Errorf("cluster_wait: via (a list of hosts to ask) is required")
	}
	failOffline, _ := t.Args.Bool("fail_offline", false)
	if t.Check {
		return d.checkWait(ctx, t, fp, want, all, vias, member)
	}
	deadline := time.Now().Add(time.Duration(timeout) * time.Second)
	if !all {
		return d.waitMemberBack(ctx, t, fp, want, deadline)
	}
	if missing := missingHosts(t); len(missing) > 0 {
		return playbooks.Result{}, fmt.Errorf("%s did not take part (unreachable or failed earlier): the cluster cannot become operational until they run the new version", strings.Join(missing, ", "))
	}
	var last string
	for {
		ms, err := d.anyMembers(ctx, t, vias, fp)
		if err == nil {
			ok, state := waitDone(ms, member, want, all)
			if ok {
				return playbooks.Result{Msg: state}, nil
			}
			if off := offlineMembers(ms); failOffline && len(off) > 0 {
				return playbooks.Result{}, fmt.Errorf("member(s) %s OFFLINE: %s", strings.Join(off, ", "), state)
			}
			last = state
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return playbooks.Result{}, fmt.Errorf("timed out after %ds waiting: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return playbooks.Result{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkWait is cluster_wait in check mode: nothing was restarted, so it reports what it
// would wait for instead of waiting for a version that cannot come.
func (d Deps) checkWait(ctx context.Context, t *playbooks.TaskContext, fp, want string, all bool, vias []string, member string) (playbooks.Result, error) {
	what := fmt.Sprintf("would wait until member %s is back on %s", member, want)
	if all {
		what = fmt.Sprintf("would wait until every member is ONLINE on %s", want)
	}
	ms, err := d.anyMembers(ctx, t, vias, fp)
	if err != nil {
		return playbooks.Result{Msg: "check mode: " + what}, nil
	}
	_, state := waitDone(ms, member, want, all)
	return playbooks.Result{Msg: "check mode: " + what + " (now: " + state + ")"}, nil
}

// anyMembers asks each host in turn until one answers.
func (d Deps) anyMembers(ctx context.Context, t *playbooks.TaskContext, vias []string, fp string) ([]api.ClusterMember, error) {
	var lastErr error
	seen := map[string]bool{}
	for _, v := range vias {
		if seen[v] {
			continue
		}
		seen[v] = true
		ms, err := d.membersVia(ctx, t, v, fp)
		if err == nil {
			return ms, nil
		}
		lastErr = fmt.Errorf("%s: %w", v, err)
	}
	return nil, lastErr
}

func waitDone(ms []api.ClusterMember, member, version string, all bool) (bool, string) {
	var states []string
	done := true
	for _, m := range ms {
		states = append(states, fmt.Sprintf("%s %s %s", m.ServerName, m.Status, m.Version))
		onVersion := version == "" || m.Version == version
		switch {
		case all && (m.Status != api.StatusOnline || !onVersion):
			done = false
		case !all && m.ServerName == member && (m.Status == api.StatusOffline || !onVersion):
			done = false
		}
	}
	sort.Strings(states)
	return done, strings.Join(states, "; ")
}

func offlineMembers(ms []api.ClusterMember) []string {
	var out []string
	for _, m := range ms {
		if m.Status == api.StatusOffline {
			out = append(out, m.ServerName)
		}
	}
	return out
}

// membersSettled lists the members, asking again for up to wait while some are OFFLINE: an
// agent started a moment ago announces itself and turns ONLINE within a heartbeat.
func (d Deps) membersSettled(ctx context.Context, t *playbooks.TaskContext, via, fp string, wait time.Duration) ([]api.ClusterMember, error) {
	deadline := time.Now().Add(wait)
	for {
		ms, err := d.listMembers(ctx, t, via, fp)
		if err != nil || len(offlineMembers(ms)) == 0 || time.Now().After(deadline) {
			return ms, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitMemberBack waits until this host's member answers GET /1.0 on its own client address
// with the wanted version. It asks the member itself: while older members remain, every
// upgraded member is BLOCKED and refuses the member list, but always answers status.
func (d Deps) waitMemberBack(ctx context.Context, t *playbooks.TaskContext, fp, want string, deadline time.Time) (playbooks.Result, error) {
	cl, err := d.apiClient(t.Host, fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	defer cl.Close()
	var last string
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, _, err := cl.Server(cctx)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case want != "" && s.Environment.ServerVersion != want:
			last = "still on " + s.Environment.ServerVersion
		default:
			state := "back on " + s.Environment.ServerVersion
			if s.Environment.Blocked {
				state += ", BLOCKED until the other members are upgraded"
			}
			return playbooks.Result{Msg: state}, nil
		}
		if time.Now().After(deadline) {
			return playbooks.Result{}, fmt.Errorf("timed out waiting for the member to come back: %s", last)
		}
		select {
		case <-ctx.Done():
			return playbooks.Result{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// missingHosts lists the inventory hosts absent from the current play: they failed or were
// unreachable in an earlier play.
func missingHosts(t *playbooks.TaskContext) []string {
	all, err := allHosts(t)
	if err != nil {
		return nil
	}
	active, err := playHosts(t)
	if err != nil {
		return nil
	}
	in := map[string]bool{}
	for _, h := range active {
		in[h] = true
	}
	var out []string
	for _, h := range all {
		if !in[h] {
			out = append(out, h)
		}
	}
	return out
}
