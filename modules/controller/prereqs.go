package controller

import (
	"context"
	"fmt"

	"orch/nodeagent/api"
	"orch/orchestrator/hostprep"
	"orch/playbooks"
)

// setup gathers the host's facts in one command (Ansible's module name): OS family and
// version, init system, architecture, package manager, kernel features and the tools the
// agent drives, as host facts (ansible_os_family, ..., orch_kernel_features, orch_tools).
func (d Deps) setup(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	f, err := gatherFacts(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	msg := fmt.Sprintf("%s %s, %s, %s, %s", f.Distribution, f.Version, f.ServiceMgr, f.Architecture, f.PkgMgr)
	return playbooks.Result{Msg: msg, Data: map[string]any{"ansible_facts": f.AnsibleFacts()}}, nil
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
	f, err := gatherFacts(ctx, t)
	if err != nil {
		return playbooks.Result{}, err
	}
	missing := hostprep.Missing(f, hostprep.Needs(p))
	facts := map[string]any{"ansible_facts": f.AnsibleFacts()}
	if len(missing) == 0 {
		return playbooks.Result{Msg: "nothing to install", Data: facts}, nil
	}
	if !install {
		return playbooks.Result{}, fmt.Errorf("%w (--no-install): %s", hostprep.ErrMissing, hostprep.Describe(f, missing))
	}
	pkgs := hostprep.Packages(f, missing)
	err = t.Change(fmt.Sprintf("install %v with %s", pkgs, f.PkgMgr), func() error {
		conn, err := t.Conn()
		if err != nil {
			return err
		}
		return hostprep.Install(ctx, conn, f, pkgs, t.Become)
	})
	return playbooks.Result{Msg: fmt.Sprintf("installed %v", pkgs), Data: facts}, err
}
