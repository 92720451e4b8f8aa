package hostmods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"orch/playbooks"
)

// lxdContainerArgNames are community.general.lxd_container's arguments.
var lxdContainerArgNames = append([]string{"name", "architecture", "config", "ignore_volatile_options", "profiles",
	"devices", "ephemeral", "source", "state", "target", "timeout", "type", "wait_for_ipv4_addresses",
	"wait_for_container", "force_stop"}, lxdConnArgs...)

// lxdStates maps LXD's status to the module's state, as Ansible's ANSIBLE_LXD_STATES.
var lxdStates = map[string]string{"Running": "started", "Stopped": "stopped", "Frozen": "frozen"}

// lxdContainer is one lxd_container task.
type lxdContainer struct {
	c                         *lxdClient
	name, state, target, arch string
	timeout                   int
	forceStop, waitIPv4       bool
	ignoreVolatile            bool
	given                     map[string]any // the instance sections given: config, devices, profiles, ephemeral, architecture
	source                    any
	old                       map[string]json.RawMessage // the instance as GET returned it
	oldState                  string
	actions                   []string
	addresses                 map[string][]string
	sawAddresses              bool
	applied                   map[string]any // the PUT body, when the sections were applied
}

// lxdContainerModule is community.general.lxd_container: it reads the instance (one
// command, GET of the instance and of its state), then creates, starts, stops, restarts,
// freezes, reconfigures (PUT of the instance with only the differing sections replaced and
// the given config keys merged) or deletes it as state asks, each action one request
// through TaskContext.Change, and returns Ansible's keys: changed, old_state, actions,
// addresses (with wait_for_ipv4_addresses). It speaks to the host's LXD socket when there
// is one (url, snap_url as Ansible) and otherwise to the orch agent's socket
// (AGENT_DIR/unix.socket, agent_dir or /var/lib/nodeagent). Only containers: type
// virtual-machine is refused (orch runs LXC containers).
func lxdContainerModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("lxd_container", t.Args, lxdContainerArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	m, err := lxdContainerArgs(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	err = m.run(ctx)
	return m.result(err)
}

func lxdContainerArgs(t *playbooks.TaskContext) (*lxdContainer, error) {
	a := t.Args
	c, err := lxdClientArgs(t)
	if err != nil {
		return nil, err
	}
	m := &lxdContainer{c: c, given: map[string]any{}, source: a["source"]}
	if m.name, err = a.Required("name"); err != nil {
		return nil, err
	}
	if m.state, err = a.String("state", "started"); err != nil {
		return nil, err
	}
	if err := choice("state", m.state, "started", "stopped", "restarted", "absent", "frozen"); err != nil {
		return nil, err
	}
	typ, err := a.String("type", "container")
	if err != nil {
		return nil, err
	}
	if err := choice("type", typ, "container", "virtual-machine"); err != nil {
		return nil, err
	}
	if typ != "container" {
		return nil, fmt.Errorf("%w \"type\": virtual-machine is not supported: orch runs LXC containers only", playbooks.ErrArgs)
	}
	if m.target, err = a.String("target", ""); err != nil {
		return nil, err
	}
	if m.timeout, err = a.Int("timeout", 30); err != nil {
		return nil, err
	}
	for _, b := range []struct {
		dst  *bool
		name string
	}{{&m.forceStop, "force_stop"}, {&m.waitIPv4, "wait_for_ipv4_addresses"}, {&m.ignoreVolatile, "ignore_volatile_options"}} {
		if *b.dst, err = a.Bool(b.name, false); err != nil {
			return nil, err
		}
	}
	if _, err := a.Bool("wait_for_container", false); err != nil {
		return nil, err // operations are always followed to their end (query --wait)
	}
	return m, m.sections(a)
}

// sections keeps the instance sections the task gives, in LXD's types.
func (m *lxdContainer) sections(a playbooks.Args) error {
	err := readSections(a, m.given, configSection("config"), devicesSection("devices"),
		sectionOf("profiles", func(a playbooks.Args, n string) ([]string, error) { return listArg(a, n) }),
		boolSection("ephemeral"), stringSection("architecture"))
	if err != nil {
		return err
	}
	if m.source != nil {
		if _, ok := m.source.(map[string]any); !ok {
			return fmt.Errorf("%w \"source\": a dictionary is required", playbooks.ErrArgs)
		}
	}
	return nil
}

func (m *lxdContainer) instancePath(suffix string) string {
	return m.c.path("/1.0/instances/" + m.name + suffix)
}

// run authenticates if asked, reads the instance and does what state asks.
func (m *lxdContainer) run(ctx context.Context) error {
	if err := m.c.authenticateIfAsked(ctx); err != nil {
		return err
	}
	rs, err := m.c.gets(ctx, m.instancePath(""))
	if err != nil {
		return err
	}
	m.oldState = "absent"
	if !rs[0].notFound() {
		if err := rs[0].err(); err != nil {
			return err
		}
		if err := json.Unmarshal(rs[0].Metadata, &m.old); err != nil {
			return fmt.Errorf("instance %s: %w", m.name, err)
		}
		var status string
		_ = json.Unmarshal(m.old["status"], &status)
		if m.oldState = lxdStates[status]; m.oldState == "" {
			return fmt.Errorf("%w: instance status %q", ErrLXD, status)
		}
	}
	return m.converge(ctx)
}

// converge is Ansible's state machine (_started, _stopped, _restarted, _destroyed, _frozen).
func (m *lxdContainer) converge(ctx context.Context) error {
	old, apply := m.oldState, m.oldState != "absent" && m.needsApply()
	steps := []string{}
	switch m.state {
	case "started":
		switch {
		case old == "absent":
			steps = []string{"create", "start"}
		case old == "frozen":
			steps = []string{"unfreeze"}
		case old == "stopped":
			steps = []string{"start"}
		}
		if apply {
			steps = append(steps, "apply_instance_configs")
		}
	case "stopped":
		switch {
		case old == "absent":
			steps = []string{"create"}
		case old == "stopped" && apply:
			steps = []string{"start", "apply_instance_configs", "stop"}
		case old == "stopped":
		default:
			if old == "frozen" {
				steps = []string{"unfreeze"}
			}
			if apply {
				steps = append(steps, "apply_instance_configs")
			}
			steps = append(steps, "stop")
		}
	case "restarted":
		if old == "absent" {
			steps = []string{"create", "start"}
			break
		}
		if old == "frozen" {
			steps = []string{"unfreeze"}
		}
		if apply {
			steps = append(steps, "apply_instance_configs")
		}
		steps = append(steps, "restart")
	case "absent":
		if old == "frozen" {
			steps = []string{"unfreeze"}
		}
		if old != "absent" && old != "stopped" {
			steps = append(steps, "stop")
		}
		if old != "absent" {
			steps = append(steps, "delete")
		}
	case "frozen":
		switch {
		case old == "absent":
			steps = []string{"create", "start"}
		case old == "stopped":
			steps = []string{"start"}
		}
		if apply {
			steps = append(steps, "apply_instance_configs")
		}
		steps = append(steps, "freeze")
	}
	for _, s := range steps {
		if err := m.step(ctx, s); err != nil {
			return err
		}
	}
	if m.waitIPv4 && (m.state == "started" || m.state == "restarted") {
		return m.waitAddresses(ctx)
	}
	return nil
}

// step does one action through TaskContext.Change and records it.
func (m *lxdContainer) step(ctx context.Context, action string) error {
	var apply func() error
	desc := fmt.Sprintf("%s instance %s", action, m.name)
	switch action {
	case "create":
		body, err := m.createBody(ctx)
		if err != nil {
			return err
		}
		apply = func() error { return m.c.send(ctx, "POST", m.c.path("/1.0/instances", "target", m.target), body) }
	case "apply_instance_configs":
		body := m.putBody()
		m.applied = body
		desc = fmt.Sprintf("reconfigure instance %s (%s)", m.name, strings.Join(m.differing(), ", "))
		apply = func() error { return m.c.send(ctx, "PUT", m.instancePath(""), body) }
	case "delete":
		apply = func() error { return m.c.send(ctx, "DELETE", m.instancePath(""), nil) }
	default:
		body := map[string]any{"action": action, "timeout": m.timeout}
		if m.forceStop && (action == "stop" || action == "restart") {
			body["force"] = true
		}
		apply = func() error { return m.c.send(ctx, "PUT", m.instancePath("/state"), body) }
	}
	if err := m.c.t.Change(desc, apply); err != nil {
		return err
	}
	m.actions = append(m.actions, action)
	return nil
}

// createBody is POST /1.0/instances: the given sections, the source and the name.
func (m *lxdContainer) createBody(ctx context.Context) (map[string]any, error) {
	body := maps.Clone(m.given)
	body["name"], body["type"] = m.name, "container"
	if m.source != nil {
		src, err := m.remoteSource(ctx)
		if err != nil {
			return nil, err
		}
		body["source"] = src
	}
	return body, nil
}

// ErrNoRemote means a source's image server is not among the orch cluster's remotes.
var ErrNoRemote = errors.New("image server is not one of the cluster's remotes")

// remoteSource is the source, its image server (server, protocol, mode) turned into the
// orch remote with that URL (REMOTE:ALIAS, as `lxc launch` names it): LXD pulls from a
// server given by URL, an orch cluster from the simplestreams servers it knows as remotes
// (GET /1.0/remotes). A server that does not serve /1.0/remotes (LXD) gets the source as
// given.
func (m *lxdContainer) remoteSource(ctx context.Context) (map[string]any, error) {
	src := maps.Clone(m.source.(map[string]any))
	server, _ := src["server"].(string)
	if server == "" {
		return src, nil
	}
	rs, err := m.c.gets(ctx, m.c.path("/1.0/remotes"))
	if err != nil || rs[0].Type == "error" {
		return src, err
	}
	var remotes []struct{ Name, URL string }
	if err := json.Unmarshal(rs[0].Metadata, &remotes); err != nil {
		return nil, fmt.Errorf("remotes: %w", err)
	}
	for _, r := range remotes {
		if strings.TrimRight(r.URL, "/") != strings.TrimRight(server, "/") {
			continue
		}
		for _, k := range []string{"server", "protocol", "mode", "certificate"} {
			delete(src, k)
		}
		for _, k := range []string{"alias", "fingerprint"} {
			if v, ok := src[k].(string); ok && v != "" {
				src[k] = r.Name + ":" + v
			}
		}
		return src, nil
	}
	return nil, fmt.Errorf("source server %s: %w (add it once: orch remote add NAME %s)", server, ErrNoRemote, server)
}

// oldSections are the instance's sections Ansible compares, volatile keys left out of maps
// when ignore_volatile_options is set.
func (m *lxdContainer) oldSection(name string) any {
	raw, ok := m.old[name]
	if !ok {
		return nil
	}
	switch name {
	case "config":
		var cfg map[string]string
		_ = json.Unmarshal(raw, &cfg)
		if m.ignoreVolatile {
			maps.DeleteFunc(cfg, func(k, _ string) bool { return strings.HasPrefix(k, "volatile.") })
		}
		return cfg
	case "devices":
		var devs map[string]map[string]string
		_ = json.Unmarshal(raw, &devs)
		return devs
	case "profiles":
		var ps []string
		_ = json.Unmarshal(raw, &ps)
		return ps
	case "ephemeral":
		var e bool
		_ = json.Unmarshal(raw, &e)
		return e
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// needsChange is Ansible's comparison of one section: the given config keys must have the
// given values (other keys are left alone); any other section must equal the given one.
func (m *lxdContainer) needsChange(name string) bool {
	want, ok := m.given[name]
	if !ok {
		return false
	}
	old := m.oldSection(name)
	if name == "config" {
		have, _ := old.(map[string]string)
		for k, v := range want.(map[string]string) {
			if cur, ok := have[k]; !ok || cur != v {
				return true
			}
		}
		return false
	}
	if (name == "devices" || name == "profiles") && empty(old) && empty(want) {
		return false // {} and null are the same here
	}
	return !reflect.DeepEqual(old, want)
}

// empty reports a missing, null or empty section.
func empty(v any) bool {
	rv := reflect.ValueOf(v)
	return !rv.IsValid() || (rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && rv.Len() == 0
}

// differing lists the sections needsChange finds different, sorted.
func (m *lxdContainer) differing() []string {
	var out []string
	for name := range m.given {
		if m.needsChange(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (m *lxdContainer) needsApply() bool { return len(m.differing()) > 0 }

// putBody is Ansible's PUT: the instance's sections as they are, the differing ones
// replaced, the given config keys set over the instance's config.
func (m *lxdContainer) putBody() map[string]any {
	body := map[string]any{}
	for _, name := range []string{"architecture", "config", "devices", "ephemeral", "profiles"} {
		if raw, ok := m.old[name]; ok {
			body[name] = raw
		}
		if !m.needsChange(name) {
			continue
		}
		if name != "config" {
			body[name] = m.given[name]
			continue
		}
		var cfg map[string]string
		_ = json.Unmarshal(m.old["config"], &cfg)
		if cfg == nil {
			cfg = map[string]string{}
		}
		maps.Copy(cfg, m.given["config"].(map[string]string))
		body["config"] = cfg
	}
	return body
}

// ErrNoAddresses means the instance had no IPv4 address on every interface by the timeout.
var ErrNoAddresses = errors.New("timeout for getting IPv4 addresses")

// waitAddresses polls the instance's state until every interface but lo has an IPv4
// address (timeout seconds); in check mode it reads them once.
func (m *lxdContainer) waitAddresses(ctx context.Context) error {
	deadline := time.Now().Add(time.Duration(m.timeout) * time.Second)
	for {
		addrs, err := m.ipv4(ctx)
		if err != nil {
			return err
		}
		m.addresses, m.sawAddresses = addrs, true
		if m.c.t.Check || allHaveIPv4(addrs) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (%ds): %v", ErrNoAddresses, m.timeout, addrs)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second): // Ansible's poll interval
		}
	}
}

// ipv4 reads the instance's IPv4 addresses by interface, lo left out.
func (m *lxdContainer) ipv4(ctx context.Context) (map[string][]string, error) {
	rs, err := m.c.gets(ctx, m.instancePath("/state"))
	if err != nil {
		return nil, err
	}
	var st struct {
		Network map[string]struct {
			Addresses []struct{ Family, Address string } `json:"addresses"`
		} `json:"network"`
	}
	if rs[0].Type != "error" {
		_ = json.Unmarshal(rs[0].Metadata, &st)
	}
	out := map[string][]string{}
	for dev, n := range st.Network {
		if dev == "lo" {
			continue
		}
		out[dev] = []string{}
		for _, a := range n.Addresses {
			if a.Family == "inet" {
				out[dev] = append(out[dev], a.Address)
			}
		}
	}
	return out, nil
}

func allHaveIPv4(addrs map[string][]string) bool {
	if len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if len(a) == 0 {
			return false
		}
	}
	return true
}

// result is Ansible's answer: changed when any action was taken (or would be, in check
// mode), old_state, actions, addresses when they were read; a failure carries the API's
// message naming the instance, and the actions done before it.
func (m *lxdContainer) result(err error) (playbooks.Result, error) {
	if lxdAborted(err) {
		return playbooks.Result{}, err
	}
	res := lxdResult(m.actions, m.oldState)
	if m.sawAddresses {
		addrs := map[string]any{}
		for k, v := range m.addresses {
			l := make([]any, len(v))
			for i, a := range v {
				l[i] = a
			}
			addrs[k] = l
		}
		res.Data["addresses"] = addrs
	}
	if m.c.t.Diff {
		res.Diff = m.diff()
	}
	if err != nil {
		return lxdFailure(res, "instance "+m.name, err)
	}
	return res, nil
}

// diff is Ansible's diff of the task: before, the instance's compared sections and its
// state; after, what was applied (or the sections given) and the state asked; shown as
// Ansible's callback shows dicts (sorted JSON, four spaces, a unified diff).
func (m *lxdContainer) diff() string {
	before := map[string]any{}
	for _, name := range []string{"architecture", "config", "devices", "ephemeral", "profiles"} {
		if _, ok := m.old[name]; ok {
			before[name] = m.oldSection(name)
		}
	}
	after := m.applied
	if after == nil {
		after = maps.Clone(m.given)
		if m.source != nil {
			after["source"] = m.source
		}
	}
	return jsonDiff(map[string]any{"instance": before, "state": m.oldState}, map[string]any{"instance": after, "state": m.state})
}

// jsonDiff is the unified diff of two values rendered as Ansible's callback renders dicts.
func jsonDiff(before, after any) string {
	render := func(v any) string {
		b, _ := json.MarshalIndent(v, "", "    ")
		return string(b) + "\n"
	}
	a, b := render(before), render(after)
	if a == b {
		return ""
	}
	s, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: splitKeep(a), B: splitKeep(b), FromFile: "before", ToFile: "after", Context: 3})
	if err != nil {
		return ""
	}
	return s
}
