package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// serviceModule is service (systemd or SysV init, whichever the host runs) and systemd
// (systemd only, with daemon_reload, masked and the unit's properties as `status`).
type serviceModule struct{ systemd bool }

// serviceSpec is what a service task asks for.
type serviceSpec struct {
	name, state         string
	enabled, masked     *bool
	daemonReload, scope string
	user                bool
	pattern, arguments  string
	noBlock             bool
}

func (m serviceModule) moduleName() string {
	if m.systemd {
		return "systemd"
	}
	return "service"
}

func (m serviceModule) Run(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	allowed := []string{"name", "service", "unit", "state", "enabled", "daemon_reload", "daemon-reload", "daemon_reexec",
		"daemon-reexec", "masked", "scope", "no_block", "force", "sleep", "pattern", "arguments", "args", "runlevel", "use"}
	if err := playbooks.AllowArgs(m.moduleName(), t.Args, allowed...); err != nil {
		return playbooks.Result{}, err
	}
	s, err := serviceArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	systemd := m.systemd
	if !systemd {
		mgr := fact(t, "service_mgr")
		if use, _ := t.Args.String("use", "auto"); use != "auto" {
			mgr = use
		}
		if mgr == "" {
			o, err := runOK(ctx, t, "finding the service manager", "[ -d /run/systemd/system ] && echo systemd || echo sysvinit", nil)
			if err != nil {
				return playbooks.Result{}, err
			}
			mgr = strings.TrimSpace(o.stdout)
		}
		systemd = mgr == "systemd"
	}
	if systemd {
		return s.runSystemd(ctx, t)
	}
	if m.systemd {
		return playbooks.Result{}, fmt.Errorf("systemd: %w: systemd is not the service manager", ErrUnsupported)
	}
	return s.runSysV(ctx, t)
}

func serviceArgs(a playbooks.Args) (serviceSpec, error) {
	var s serviceSpec
	s.name, _ = strArg(a, "", "name", "service", "unit")
	s.state, _ = a.String("state", "")
	if s.state != "" {
		if err := choice("state", s.state, "started", "stopped", "restarted", "reloaded"); err != nil {
			return s, err
		}
	}
	for _, b := range []struct {
		name string
		dst  **bool
	}{{"enabled", &s.enabled}, {"masked", &s.masked}} {
		if a.Has(b.name) {
			v, err := a.Bool(b.name, false)
			if err != nil {
				return s, err
			}
			*b.dst = &v
		}
	}
	reload, err := boolArg(a, false, "daemon_reload", "daemon-reload")
	if err != nil {
		return s, err
	}
	if reexec, _ := boolArg(a, false, "daemon_reexec", "daemon-reexec"); reexec {
		s.daemonReload = "daemon-reexec"
	} else if reload {
		s.daemonReload = "daemon-reload"
	}
	s.scope, _ = a.String("scope", "system")
	if err := choice("scope", s.scope, "system", "user", "global"); err != nil {
		return s, err
	}
	s.noBlock, _ = a.Bool("no_block", false)
	s.pattern, _ = a.String("pattern", "")
	s.arguments, _ = strArg(a, "", "arguments", "args")
	if s.name == "" && (s.state != "" || s.enabled != nil || s.masked != nil || s.daemonReload == "") {
		return s, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	}
	return s, nil
}

func (s serviceSpec) systemctl() string {
	c := "systemctl"
	if s.scope != "system" {
		c += " --" + s.scope
	}
	if s.noBlock {
		c += " --no-block"
	}
	return c
}

// runSystemd reads the unit's properties and is-enabled in one command, then masks,
// enables and starts/stops in one more (Ansible's order: mask, enable, state).
func (s serviceSpec) runSystemd(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	res := playbooks.Result{Data: map[string]any{"name": s.name}}
	if s.daemonReload != "" {
		err := t.ChangeIf("systemctl "+s.daemonReload, func() (bool, error) {
			_, err := runOK(ctx, t, "systemctl "+s.daemonReload, s.systemctl()+" "+s.daemonReload, nil)
			return false, err
		})
		if err != nil || s.name == "" {
			return res, err
		}
	}
	sc := s.systemctl()
	o, err := run(ctx, t, "export LC_ALL=C\ncommand -v systemctl >/dev/null || { echo 'systemctl not found' >&2; exit 127; }\n"+
		sc+" show -- "+q(s.name)+" || exit 1\necho \"orch_is_enabled=$("+sc+" is-enabled -- "+q(s.name)+" 2>/dev/null)\"", nil)
	if err != nil {
		return res, err
	}
	if err := o.err("systemctl show " + s.name); err != nil {
		return res, err
	}
	props := fields(o.stdout)
	isEnabled := props["orch_is_enabled"]
	delete(props, "orch_is_enabled")
	status := map[string]any{}
	for k, v := range props {
		status[k] = v
	}
	res.Data["status"] = status
	found := props["LoadState"] != "not-found" || isEnabled != ""
	if !found && (s.state != "" || s.enabled != nil || (s.masked != nil && *s.masked)) {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Could not find the requested service %s: host", s.name), Data: res.Data}, nil
	}
	var cmds, what []string
	if s.masked != nil && *s.masked != (isEnabled == "masked" || isEnabled == "masked-runtime") {
		verb := map[bool]string{true: "mask", false: "unmask"}[*s.masked]
		cmds, what = append(cmds, sc+" "+verb+" -- "+q(s.name)), append(what, verb)
	}
	if s.enabled != nil {
		res.Data["enabled"] = *s.enabled
		now := isEnabled == "enabled" || isEnabled == "enabled-runtime" || isEnabled == "static" || isEnabled == "alias" ||
			isEnabled == "indirect" || isEnabled == "generated"
		if *s.enabled != now && !(isEnabled == "static" && !*s.enabled) {
			verb := map[bool]string{true: "enable", false: "disable"}[*s.enabled]
			cmds, what = append(cmds, sc+" "+verb+" -- "+q(s.name)), append(what, verb)
		}
	}
	if action := systemdAction(s.state, props["ActiveState"]); action != "" {
		cmds, what = append(cmds, sc+" "+action+" -- "+q(s.name)), append(what, action)
	}
	if s.state != "" {
		res.Data["state"] = map[bool]string{true: "stopped", false: "started"}[s.state == "stopped"]
	}
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(what, ", ")+" "+s.name, func() error {
		_, err := runOK(ctx, t, strings.Join(what, ", ")+" "+s.name, strings.Join(cmds, " && "), nil)
		return err
	})
}

// systemdAction is the systemctl verb that brings a unit in ActiveState active to state.
func systemdAction(state, active string) string {
	running := active == "active" || active == "activating" || active == "reloading"
	switch state {
	case "started":
		if !running {
			return "start"
		}
	case "stopped":
		if running || active == "deactivating" {
			return "stop"
		}
	case "restarted", "reloaded":
		if !running {
			return "start"
		}
		return strings.TrimSuffix(state, "ed")
	}
	return ""
}

// runSysV manages a SysV init script: status by `service NAME status` (or a pgrep pattern),
// boot links with update-rc.d or chkconfig.
func (s serviceSpec) runSysV(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	res := playbooks.Result{Data: map[string]any{"name": s.name}}
	status := "service " + q(s.name) + " status >/dev/null 2>&1 || /etc/init.d/" + q(s.name) + " status >/dev/null 2>&1"
	if s.pattern != "" {
		status = "pgrep -f -- " + q(s.pattern) + " >/dev/null"
	}
	probe := "if " + status + "; then echo running=yes; fi\n" +
		"if ls /etc/rc[2345].d/S*" + q(s.name) + " >/dev/null 2>&1; then echo enabled=yes; fi\n" +
		"[ -x /etc/init.d/" + q(s.name) + " ] || echo found=no\n"
	o, err := runOK(ctx, t, "status of "+s.name, probe, nil)
	if err != nil {
		return res, err
	}
	f := fields(o.stdout)
	if f["found"] == "no" && (s.state != "" || s.enabled != nil) {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("Could not find the requested service %s: host", s.name), Data: res.Data}, nil
	}
	var cmds, what []string
	if s.enabled != nil && *s.enabled != (f["enabled"] == "yes") {
		verb := map[bool]string{true: "enable", false: "disable"}[*s.enabled]
		cmds = append(cmds, "if command -v update-rc.d >/dev/null; then update-rc.d "+q(s.name)+" "+
			map[bool]string{true: "defaults", false: "remove"}[*s.enabled]+"; else chkconfig "+q(s.name)+" "+
			map[bool]string{true: "on", false: "off"}[*s.enabled]+"; fi")
		what = append(what, verb)
		res.Data["enabled"] = *s.enabled
	}
	active := map[bool]string{true: "active", false: "inactive"}[f["running"] == "yes"]
	if action := systemdAction(s.state, active); action != "" {
		cmds = append(cmds, "service "+q(s.name)+" "+action+" "+s.arguments)
		what = append(what, action)
	}
	if s.state != "" {
		res.Data["state"] = map[bool]string{true: "stopped", false: "started"}[s.state == "stopped"]
	}
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(what, ", ")+" "+s.name, func() error {
		_, err := runOK(ctx, t, strings.Join(what, ", ")+" "+s.name, strings.Join(cmds, " && "), nil)
		return err
	})
}
