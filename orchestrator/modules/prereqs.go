package modules

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"strings"

	"orch/nodeagent/api"
	"orch/orchestrator/hostprep"
	"orch/playbooks"
)

// setup gathers the host's facts in one command (Ansible's module name): OS family and
// version, init system, architecture, package manager, host names, addresses and
// interfaces, memory, CPUs, environment and clock, kernel features and the tools the agent
// drives, as host facts (ansible_os_family, ..., orch_kernel_features, orch_tools).
// gather_subset keeps or drops the network and hardware facts (the command is the same);
// filter keeps the facts whose names match one of its globs (with or without ansible_).
func (d Deps) setup(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	subset, err := t.Args.StringList("gather_subset")
	if err != nil {
		return playbooks.Result{}, err
	}
	filter, err := t.Args.StringList("filter")
	if err != nil {
		return playbooks.Result{}, err
	}
	f, err := gatherFacts(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	facts, err := selectFacts(f.AnsibleFacts(), subset, filter)
	if err != nil {
		return playbooks.Result{}, err
	}
	msg := fmt.Sprintf("%s %s, %s, %s, %s", f.Distribution, f.Version, f.ServiceMgr, f.Architecture, f.PkgMgr)
	return playbooks.Result{Msg: msg, Data: map[string]any{"ansible_facts": facts}}, nil
}

// factSubsets are the gather_subset names orch knows, with the facts they hold (the
// rest is in "min", always gathered, as in Ansible).
var factSubsets = map[string][]string{
	"network": {"ansible_default_ipv4", "ansible_all_ipv4_addresses", "ansible_interfaces"},
	"hardware": {"ansible_memtotal_mb", "ansible_processor_vcpus", "ansible_processor_count", "ansible_processor_cores",
		"ansible_processor_threads_per_core", "ansible_machine", "ansible_memory_mb", "ansible_memfree_mb",
		"ansible_swaptotal_mb", "ansible_swapfree_mb", "ansible_fips"},
}

// subsetAliases are the other names Ansible's gather_subset takes (its collectors and
// their fact ids, ansible-core 2.14): a network or hardware fact id selects that subset;
// the rest orch gathers with "min", always there.
var subsetAliases = func() map[string]string {
	out := map[string]string{}
	for _, n := range []string{"all_ipv4_addresses", "all_ipv6_addresses", "default_ipv4", "default_ipv6", "interfaces"} {
		out[n] = "network"
	}
	for _, n := range []string{"devices", "mounts", "processor", "processor_cores", "processor_count"} {
		out[n] = "hardware"
	}
	for _, n := range strings.Fields(`apparmor architecture caps chroot cmdline date_time distribution
		distribution_major_version distribution_release distribution_version dns effective_group_ids
		effective_user_id env facter fips is_chroot kernel kernel_version loadavg local lsb machine
		machine_id ohai os_family pkg_mgr platform python python_version real_user_id selinux
		service_mgr ssh_host_key_dsa_public ssh_host_key_ecdsa_public ssh_host_key_ed25519_public
		ssh_host_key_rsa_public ssh_host_pub_keys ssh_pub_keys system system_capabilities
		system_capabilities_enforced user user_dir user_gecos user_gid user_id user_shell user_uid
		virtual virtualization_role virtualization_tech_guest virtualization_tech_host virtualization_type`) {
		out[n] = "min"
	}
	return out
}()

// errSubset means gather_subset names a subset orch does not know.
var errSubset = errors.New("unknown gather_subset")

// selectFacts applies gather_subset and filter to the facts.
func selectFacts(facts map[string]any, subset, filter []string) (map[string]any, error) {
	include, exclude := map[string]bool{}, map[string]bool{}
	if len(subset) == 0 {
		subset = []string{"all"}
	}
	for _, s := range subset {
		for _, name := range strings.Split(s, ",") {
			name = strings.TrimSpace(name)
			neg := strings.HasPrefix(name, "!")
			name = strings.TrimPrefix(name, "!")
			if alias, ok := subsetAliases[name]; ok {
				name = alias
			}
			if _, known := factSubsets[name]; !known && name != "all" && name != "min" {
				return nil, fmt.Errorf("%w %q (orch knows all, min, network, hardware and Ansible's collector names)", errSubset, name)
			}
			if neg {
				exclude[name] = true
			} else {
				include[name] = true
			}
		}
	}
	out := maps.Clone(facts)
	for name, keys := range factSubsets {
		keep := (include["all"] || include[name]) && !exclude[name] && !(exclude["all"] && !include[name])
		if keep {
			continue
		}
		for _, k := range keys {
			delete(out, k)
		}
		if name == "network" {
			for k, v := range out {
				if m, ok := v.(map[string]any); ok && m["device"] != nil {
					delete(out, k)
				}
			}
		}
	}
	if len(filter) == 0 {
		return out, nil
	}
	for k := range out {
		if !matchesAny(k, filter) {
			delete(out, k)
		}
	}
	return out, nil
}

func matchesAny(name string, globs []string) bool {
	short := strings.TrimPrefix(name, "ansible_")
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
		if ok, _ := path.Match(strings.TrimPrefix(g, "ansible_"), short); ok {
			return true
		}
	}
	return false
}

func gatherFacts(ctx context.Context, t *playbooks.TaskContext) (*hostprep.Facts, error) {
	conn, err := t.Conn()
	if err != nil {
		return nil, err
	}
	return hostprep.Gather(ctx, conn, t.Become)
}

// hostPrereqs installs, through the host's package manager, what a member of this cluster
// needs and the host lacks (LXC, dnsmasq and nftables for bridge networks, pool drivers'
// tools); a converged host installs nothing. install: false refuses instead, listing what
// is missing (`orch up --no-install`).
func (d Deps) hostPrereqs(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	install, err := t.Args.Bool("install", true)
	if err != nil {
		return playbooks.Result{}, err
	}
	vars, err := hostVars(t, "")
	if err != nil {
		return playbooks.Result{}, err
	}
	p := d.Preseed
	if p == nil {
		p = &api.Preseed{}
		if err := fromVars(vars, p); err != nil {
			return playbooks.Result{}, err
		}
	}
	conn, err := t.Conn()
	if err != nil {
		return playbooks.Result{}, err
	}
	needs := hostprep.Needs(p)
	// The facts (package manager, OS) only matter when something is missing.
	if missing, err := hostprep.MissingOn(ctx, conn, needs, t.Become); err != nil || len(missing) == 0 {
		return playbooks.Result{Msg: "nothing to install"}, err
	}
	f, err := gatherFacts(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	missing := hostprep.Missing(f, needs)
	facts := map[string]any{"ansible_facts": f.AnsibleFacts()}
	if len(missing) == 0 {
		return playbooks.Result{Msg: "nothing to install", Data: facts}, nil
	}
	if !install {
		return playbooks.Result{}, fmt.Errorf("%w (--no-install): %s", hostprep.ErrMissing, hostprep.Describe(f, missing))
	}
	pkgs := hostprep.Packages(f, missing)
	err = t.Change(fmt.Sprintf("install %v with %s", pkgs, f.PkgMgr), func() error {
		return hostprep.Install(ctx, conn, f, pkgs, t.Become)
	})
	return playbooks.Result{Msg: fmt.Sprintf("installed %v", pkgs), Data: facts}, err
}
