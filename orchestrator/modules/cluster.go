package modules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"orch/internal/shell"
	"orch/inventory"
	"orch/nodeagent/api"
	"orch/orchestrator/agentctl"
	"orch/orchestrator/transport"
	"orch/playbooks"
)

// facts is what agent_facts registers about a host.
type facts struct {
	Initialised bool   `json:"initialised"`
	ServerName  string `json:"server_name"`
	Fingerprint string `json:"fingerprint"`
	Address     string `json:"cluster_address"`
	Blocked     bool   `json:"blocked"`
	Version     string `json:"version"`
	Schema      int    `json:"schema_version"`
}

func (f facts) data() map[string]any {
	b, _ := json.Marshal(f)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func readFacts(v any) (facts, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return facts{}, false
	}
	b, err := json.Marshal(m)
	if err != nil {
		return facts{}, false
	}
	var f facts
	if json.Unmarshal(b, &f) != nil {
		return facts{}, false
	}
	_, has := m["initialised"]
	return f, has
}

// agentFacts asks the agent what it is: initialised or not, member of which cluster.
func (d Deps) agentFacts(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	env, err := agentInfo(ctx, conn, a.Dir)
	if err != nil {
		return playbooks.Result{}, err
	}
	f := facts{Initialised: env.Initialised, ServerName: env.ServerName, Address: env.ClusterAddress,
		Blocked: env.Blocked, Version: env.ServerVersion, Schema: env.SchemaVersion}
	if env.Initialised {
		f.Fingerprint = env.CertificateFingerprint
	}
	return playbooks.Result{Data: f.data()}, nil
}

// agentInfo is what `nodeagent info` says, asked of the daemon's socket directly when the
// SSH connection can reach it (agentctl.Local), else through the CLI.
func agentInfo(ctx context.Context, conn *transport.Conn, dir string) (api.Environment, error) {
	var env api.Environment
	done, err := agentctl.Local(ctx, conn, dir, func(cl *api.Client) error {
		s, _, err := cl.Server(ctx)
		if err != nil {
			return fmt.Errorf("nodeagent info: %w", err)
		}
		env = s.Environment
		return nil
	})
	if done {
		return env, err
	}
	out, err := agentctl.Run(ctx, conn, dir, nil, "info", "--format", "json")
	if err != nil {
		return env, err
	}
	if err := json.Unmarshal(out, &env); err != nil {
		return env, fmt.Errorf("agent info: %w", err)
	}
	return env, nil
}

// plan is what cluster_plan decides.
type plan struct {
	Bootstrap   string   `json:"bootstrap"`
	Via         string   `json:"via"`
	Join        []string `json:"join"`
	Members     []string `json:"members"`
	Fingerprint string   `json:"fingerprint"`
}

// clusterPlan (run once) decides, from every host's registered facts (var `facts`, or the
// name in args.facts), who bootstraps and who joins through which live member. It never
// bootstraps while any host is a member, nor while a host's state is unknown.
func (d Deps) clusterPlan(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	factsVar, _ := t.Args.String("facts", "agent")
	hosts, err := playHosts(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	var p plan
	var unknown []string
	byCluster := map[string][]string{}
	for _, h := range hosts {
		vars, err := hostVars(t, h)
		if err != nil {
			return playbooks.Result{}, err
		}
		f, ok := readFacts(vars[factsVar])
		switch {
		case !ok:
			unknown = append(unknown, h)
		case f.Initialised:
			byCluster[f.Fingerprint] = append(byCluster[f.Fingerprint], h)
			p.Members = append(p.Members, h)
		default:
			p.Join = append(p.Join, h)
		}
	}
	if len(byCluster) > 1 {
		return playbooks.Result{}, fmt.Errorf("%w: %s", ErrSplitBrain, describeClusters(byCluster))
	}
	for fp, ms := range byCluster {
		p.Fingerprint, p.Via = fp, ms[0]
	}
	if p.Via == "" {
		if len(unknown) > 0 {
			return playbooks.Result{}, fmt.Errorf("no reachable host is a cluster member and %s could not be asked: refusing to bootstrap a cluster that might already exist", strings.Join(unknown, ", "))
		}
		if len(p.Join) == 0 {
			return playbooks.Result{}, fmt.Errorf("no host to bootstrap")
		}
		p.Bootstrap, p.Via, p.Join = p.Join[0], p.Join[0], p.Join[1:]
	}
	if p.Join == nil {
		p.Join = []string{}
	}
	b, _ := json.Marshal(p)
	var data map[string]any
	_ = json.Unmarshal(b, &data)
	return playbooks.Result{Data: data, Msg: planMessage(p)}, nil
}

func planMessage(p plan) string {
	switch {
	case p.Bootstrap != "" && len(p.Join) > 0:
		return fmt.Sprintf("bootstrap %s, then join %s", p.Bootstrap, strings.Join(p.Join, ", "))
	case p.Bootstrap != "":
		return "bootstrap " + p.Bootstrap
	case len(p.Join) > 0:
		return fmt.Sprintf("join %s through %s", strings.Join(p.Join, ", "), p.Via)
	}
	return "every host is a member"
}

func describeClusters(by map[string][]string) string {
	var parts []string
	for fp, hs := range by {
		parts = append(parts, fmt.Sprintf("%s in cluster %.12s", strings.Join(hs, ", "), fp))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// playHosts lists the hosts of the current play batch (ansible_play_batch).
func playHosts(t *playbooks.TaskContext) ([]string, error) {
	for _, name := range []string{"ansible_play_batch", "ansible_play_hosts", "play_hosts"} {
		v, ok := t.Vars().Get(name)
		if !ok {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			if ss, ok := v.([]string); ok {
				return ss, nil
			}
			continue
		}
		var out []string
		for _, x := range list {
			out = append(out, fmt.Sprint(x))
		}
		return out, nil
	}
	return nil, fmt.Errorf("play hosts unavailable")
}

// preseedFor builds the preseed of a host: cluster-wide settings from --preseed or from the
// inventory vars (config, storage_pools, networks, profiles), and the member's own part
// from its agent settings.
func (d Deps) preseedFor(a inventory.AgentSettings, vars map[string]any, bootstrap bool) (*api.Preseed, error) {
	p := &api.Preseed{}
	if bootstrap {
		if d.Preseed != nil {
			cp := *d.Preseed
			p = &cp
			p.Cluster = nil
		} else if err := fromVars(vars, p); err != nil {
			return nil, err
		}
	}
	if p.Config == nil {
		p.Config = map[string]string{}
	}
	if bootstrap {
		if _, ok := p.Config["cluster.https_address"]; !ok {
			p.Config["cluster.https_address"] = a.ClusterAddress
		}
		if _, ok := p.Config["core.https_address"]; !ok {
			p.Config["core.https_address"] = a.ClientAddress
		}
	}
	p.Cluster = &api.ClusterPut{Enabled: true, ServerName: a.NodeName, ServerAddress: a.ClusterAddress,
		MemberConfig: memberConfig(a.MemberConfig)}
	return p, nil
}

// memberConfig turns the inventory's member_config into the preseed's.
func memberConfig(mc []inventory.MemberConfig) []api.MemberConfigKey {
	var out []api.MemberConfigKey
	for _, c := range mc {
		out = append(out, api.MemberConfigKey{Entity: c.Entity, Name: c.Name, Key: c.Key, Value: c.Value, Description: c.Description})
	}
	return out
}

// fromVars reads the cluster-wide preseed sections from inventory vars.
func fromVars(vars map[string]any, p *api.Preseed) error {
	for key, dst := range map[string]any{"config": &p.Config, "storage_pools": &p.StoragePools, "networks": &p.Networks, "profiles": &p.Profiles} {
		v, ok := vars[key]
		if !ok || v == nil {
			continue
		}
		if err := convert(v, dst); err != nil {
			return fmt.Errorf("inventory var %s: %w", key, err)
		}
	}
	return nil
}

// convert re-decodes a generic value into a typed one through YAML (scalars become strings).
func convert(v, dst any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(dst)
}

// clusterBootstrap initialises the first member from the preseed.
func (d Deps) clusterBootstrap(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	vars, _ := hostVars(t, "")
	p, err := d.preseedFor(a, vars, true)
	if err != nil {
		return playbooks.Result{}, err
	}
	doc, err := yaml.Marshal(p)
	if err != nil {
		return playbooks.Result{}, err
	}
	err = t.Change("bootstrap cluster member "+p.Cluster.ServerName, func() error {
		return agentInitDoc(ctx, conn, a.Dir, doc, false)
	})
	return playbooks.Result{Changed: true, Msg: "bootstrapped " + p.Cluster.ServerName}, err
}

// trustHere pins the cluster certificate of the member at dir and adds orch's client
// certificate to the cluster's trust store through the member's local socket: asked of the
// socket directly when the SSH connection can reach it (agentctl.Local: no process on the
// host), else with `cat` and the agent CLI.
func (d Deps) trustHere(ctx context.Context, conn *transport.Conn, dir string) (string, error) {
	_, pem, err := d.Store.ClientCertificate()
	if err != nil {
		return "", err
	}
	var fp string
	done, err := agentctl.Local(ctx, conn, dir, func(cl *api.Client) error {
		s, _, err := cl.Server(ctx)
		if err != nil {
			return fmt.Errorf("reading the cluster certificate: %w", err)
		}
		if fp, err = d.Store.PinCluster([]byte(s.Environment.Certificate)); err != nil {
			return err
		}
		return cl.AddCertificate(ctx, api.CertificatesPost{Name: "orch", Type: "client", Certificate: string(pem)})
	})
	if done {
		return fp, err
	}
	return d.trustWithCLI(ctx, conn, dir, pem)
}

// trustWithCLI is trustHere through commands on the host.
func (d Deps) trustWithCLI(ctx context.Context, conn *transport.Conn, dir string, pem []byte) (string, error) {
	res, err := conn.Run(ctx, "cat "+shell.Quote(agentctl.ClusterCert(dir)), transport.RunOptions{})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("reading the cluster certificate: %s", strings.TrimSpace(string(res.Stderr)))
	}
	fp, err := d.Store.PinCluster(res.Stdout)
	if err != nil {
		return "", err
	}
	_, err = agentctl.Run(ctx, conn, dir, pem, "trust", "add", "orch")
	return fp, err
}

// clusterTrust makes sure orch can use the cluster API: the cluster certificate is pinned
// and orch's client certificate trusted (checked over HTTPS, fixed over SSH). It returns the
// cluster's fingerprint (Data.fingerprint) for the tasks that follow.
func (d Deps) clusterTrust(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a, err := d.agent(connHost(t))
	if err != nil {
		return playbooks.Result{}, err
	}
	fp, _ := t.Args.String("fingerprint", "")
	if fp != "" && d.trusted(ctx, a.ClientAddress, fp) {
		return playbooks.Result{Msg: "orch is trusted", Data: map[string]any{"fingerprint": fp}}, nil
	}
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	err = t.Change("trust orch's client certificate", func() error {
		fp, err = d.trustHere(ctx, conn, a.Dir)
		return err
	})
	return playbooks.Result{Changed: true, Msg: "trusted orch's client certificate", Data: map[string]any{"fingerprint": fp}}, err
}

// trusted reports whether the member at addr answers orch's certificate as trusted.
func (d Deps) trusted(ctx context.Context, addr, fp string) bool {
	if !d.Store.Pinned(fp) {
		return false
	}
	cl, err := d.Store.Client(addr, fp)
	if err != nil {
		return false
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, _, err := cl.Server(ctx)
	return err == nil && s.Auth == "trusted"
}

// apiClient returns a client of the cluster through host via (its client address).
func (d Deps) apiClient(via, fp string) (*api.Client, error) {
	a, err := d.agent(via)
	if err != nil {
		return nil, err
	}
	return d.Store.Client(a.ClientAddress, fp)
}

// clusterJoin joins this host: a one-use token from the cluster API, then `nodeagent init`
// with it on the host.
func (d Deps) clusterJoin(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	via, fp, err := viaArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	conn, a, err := d.hostAgent(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	wipe, err := t.Args.Bool("wipe", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	p, err := d.preseedFor(a, nil, false)
	if err != nil {
		return playbooks.Result{}, err
	}
	err = t.Change("join "+p.Cluster.ServerName+" through "+via, func() error {
		cl, err := d.apiClient(via, fp)
		if err != nil {
			return err
		}
		defer cl.Close()
		tok, err := cl.CreateToken(ctx, p.Cluster.ServerName)
		if err != nil {
			return fmt.Errorf("join token from %s: %w", via, err)
		}
		p.Cluster.ClusterToken = tok.Token
		return agentInit(ctx, conn, a.Dir, p, wipe)
	})
	return playbooks.Result{Changed: true, Msg: "joined " + p.Cluster.ServerName}, err
}

// agentInit is `nodeagent init --preseed` with p: a request to the daemon's socket when
// the SSH connection can reach it (agentctl.Local), else the CLI with the preseed on stdin.
func agentInit(ctx context.Context, conn *transport.Conn, dir string, p *api.Preseed, wipe bool) error {
	doc, err := yaml.Marshal(p)
	if err != nil {
		return err
	}
	return agentInitDoc(ctx, conn, dir, doc, wipe)
}

// agentInitDoc is agentInit with the preseed document already written.
func agentInitDoc(ctx context.Context, conn *transport.Conn, dir string, doc []byte, wipe bool) error {
	done, err := agentctl.Local(ctx, conn, dir, func(cl *api.Client) error {
		// The checks the CLI makes of the document it reads.
		q, err := api.ParsePreseed("<stdin>", doc)
		if err == nil {
			err = cl.Init(ctx, api.InitPost{Preseed: *q, Wipe: wipe})
		}
		if err != nil {
			return fmt.Errorf("nodeagent init: %w", err)
		}
		return nil
	})
	if done {
		return err
	}
	args := []string{"init", "--preseed"}
	if wipe {
		args = append(args, "--wipe")
	}
	_, err = agentctl.Run(ctx, conn, dir, doc, args...)
	return err
}

// clusterMembers lists the members through the cluster API and fails when a member is not
// online.
func (d Deps) clusterMembers(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	via, fp, err := viaArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	ms, err := d.listMembers(ctx, t, via, fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	var list []any
	var summary []string
	for _, m := range ms {
		list = append(list, map[string]any{"name": m.ServerName, "status": m.Status, "roles": strings.Join(m.Roles, ","), "url": m.URL})
		summary = append(summary, fmt.Sprintf("%s %s %s", m.ServerName, m.Status, strings.Join(m.Roles, ",")))
	}
	return playbooks.Result{Data: map[string]any{"members": list}, Msg: strings.Join(summary, "; ")}, nil
}
