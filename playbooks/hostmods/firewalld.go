package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// firewalldArgNames are ansible.posix.firewalld's arguments.
var firewalldArgNames = []string{"service", "protocol", "port", "port_forward", "rich_rule", "source", "interface",
	"icmp_block", "icmp_block_inversion", "masquerade", "zone", "permanent", "immediate", "state", "timeout", "offline", "target", "forward"}

// fwItem is one thing a firewalld task enables or disables: the firewall-cmd option stem
// (port, service, ...) and its value ("" for the switches: masquerade...).
type fwItem struct{ kind, value string }

// fwScope is where a query or change applies: runtime (firewall-cmd), permanent
// (firewall-cmd --permanent) or offline (firewall-offline-cmd, the permanent configuration
// of a firewalld that is not running).
type fwScope string

func (s fwScope) cmd(zone string) string {
	c := "firewall-cmd"
	switch s {
	case "permanent":
		c += " --permanent"
	case "offline":
		c = "firewall-offline-cmd"
	}
	if zone != "" {
		c += " --zone=" + q(zone)
	}
	return c
}

// firewalldModule is ansible.posix.firewalld over firewall-cmd: each item (service, port,
// source, interface, rich_rule, icmp_block, masquerade, icmp_block_inversion, port_forward)
// is queried (--query-X) in the runtime and/or permanent configuration, as permanent and
// immediate ask, in one command, and added or removed (--add-X/--remove-X) where it
// differs in one more. When firewalld is not running the permanent configuration is edited
// with firewall-offline-cmd and runtime changes fail, as in the Python module.
func firewalldModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("firewalld", a, firewalldArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	state, err := a.Required("state")
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := choice("state", state, "enabled", "disabled", "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	zone, _ := a.String("zone", "")
	permanent, err := a.Bool("permanent", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	immediate, err := a.Bool("immediate", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	timeout, err := a.Int("timeout", 0)
	if err != nil {
		return playbooks.Result{}, err
	}
	items, err := firewalldItems(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	target, _ := a.String("target", "")
	if state == "present" || state == "absent" {
		if len(items) > 0 || zone == "" && target == "" {
			return playbooks.Result{}, fmt.Errorf("%w \"state\": present and absent apply to a zone or its target alone; use enabled or disabled", playbooks.ErrArgs)
		}
	} else if len(items) == 0 && target == "" {
		return playbooks.Result{}, fmt.Errorf("%w: one of service, port, source, interface, rich_rule, icmp_block, icmp_block_inversion, masquerade, port_forward or target is required", playbooks.ErrArgs)
	}
	probe := "if command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1; then echo running=yes\n" +
		"elif command -v firewall-offline-cmd >/dev/null 2>&1; then echo running=no\nelse echo running=missing; exit 0; fi\n"
	o, err := runOK(ctx, t, "firewalld state", probe, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	running := fields(o.stdout)["running"]
	if running == "missing" {
		return playbooks.Result{Failed: true, Msg: "firewalld is not installed on the host (neither firewall-cmd nor firewall-offline-cmd found)"}, nil
	}
	var scopes []fwScope
	switch {
	case running == "no" && (!permanent || immediate || timeout > 0):
		return playbooks.Result{Failed: true, Msg: "firewall is not currently running, unable to perform immediate actions without a running firewall daemon"}, nil
	case running == "no":
		scopes = []fwScope{"offline"}
	case !permanent:
		scopes = []fwScope{"runtime"}
	case immediate:
		scopes = []fwScope{"permanent", "runtime"}
	default:
		scopes = []fwScope{"permanent"}
	}
	if state == "present" || state == "absent" {
		return firewalldZone(ctx, t, scopes[0], zone, target, state)
	}
	var b strings.Builder
	for i, it := range items {
		for _, s := range scopes {
			fmt.Fprintf(&b, "%s %s >/dev/null 2>&1; echo q%d_%s=$?\n", s.cmd(zone), it.flag("query"), i, s)
		}
	}
	if target != "" {
		fmt.Fprintf(&b, "echo target=$(%s --get-target 2>/dev/null)\n", fwScope(map[bool]string{true: "offline", false: "permanent"}[running == "no"]).cmd(zone))
	}
	o, err = runOK(ctx, t, "firewall-cmd query", b.String(), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	f := fields(o.stdout)
	want := state == "enabled"
	var cmds, msgs []string
	for i, it := range items {
		for _, s := range scopes {
			rc := f[fmt.Sprintf("q%d_%s", i, s)]
			if rc != "0" && rc != "1" {
				return playbooks.Result{Failed: true, Msg: fmt.Sprintf("firewall-cmd %s failed (exit code %s): is zone %q known?", it.flag("query"), rc, zone)}, nil
			}
			if (rc == "0") == want {
				continue
			}
			verb := map[bool]string{true: "add", false: "remove"}[want]
			c := s.cmd(zone) + " " + it.flag(verb)
			if s == "runtime" && timeout > 0 && want {
				c += fmt.Sprintf(" --timeout=%d", timeout)
			}
			cmds = append(cmds, c)
			msgs = append(msgs, fmt.Sprintf("Changed %s %s to %s", it.kind, it.value, state))
		}
	}
	if target != "" && f["target"] != target && state == "enabled" {
		s := scopes[0]
		if s == "runtime" {
			s = "permanent"
		}
		cmds = append(cmds, s.cmd(zone)+" --set-target="+q(target))
		msgs = append(msgs, "Changed target to "+target)
	}
	if len(cmds) == 0 {
		return playbooks.Result{Msg: "Permanent and Non-Permanent(immediate) operation"}, nil
	}
	res := playbooks.Result{Msg: strings.Join(msgs, ", ")}
	return res, t.Change(strings.Join(cmds, "; "), func() error {
		_, err := runOK(ctx, t, "firewall-cmd", "set -e\n"+strings.Join(cmds, "\n")+"\n", nil)
		return err
	})
}

// firewalldZone creates or deletes a permanent zone (state present/absent with zone alone).
func firewalldZone(ctx context.Context, t *playbooks.TaskContext, s fwScope, zone, target, state string) (playbooks.Result, error) {
	if s == "runtime" {
		return playbooks.Result{Failed: true, Msg: "zone operations must be permanent; make sure you didn't set the 'permanent' flag to 'false' or the 'immediate' flag to 'true'"}, nil
	}
	o, err := runOK(ctx, t, "firewall-cmd --get-zones", s.cmd("")+" --get-zones", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	exists := containsStr(strings.Fields(o.stdout), zone)
	if exists == (state == "present") {
		return playbooks.Result{}, nil
	}
	c := s.cmd("") + " --new-zone=" + q(zone)
	if state == "absent" {
		c = s.cmd("") + " --delete-zone=" + q(zone)
	}
	return playbooks.Result{Msg: "Changed zone " + zone + " to " + state}, t.Change(c, func() error {
		_, err := runOK(ctx, t, c, c, nil)
		return err
	})
}

// flag is the firewall-cmd option for verb (query, add, remove) on the item.
func (it fwItem) flag(verb string) string {
	if it.value == "" {
		return "--" + verb + "-" + it.kind
	}
	return "--" + verb + "-" + it.kind + "=" + q(it.value)
}

// firewalldItems lists what the task enables or disables.
func firewalldItems(a playbooks.Args) ([]fwItem, error) {
	var items []fwItem
	for _, k := range [][2]string{{"service", "service"}, {"port", "port"}, {"source", "source"}, {"interface", "interface"},
		{"rich_rule", "rich-rule"}, {"icmp_block", "icmp-block"}, {"protocol", "protocol"}} {
		vals, err := listArg(a, k[0])
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			items = append(items, fwItem{k[1], v})
		}
	}
	for _, k := range [][2]string{{"masquerade", "masquerade"}, {"icmp_block_inversion", "icmp-block-inversion"}, {"forward", "forward"}} {
		if a.Has(k[0]) {
			on, err := a.Bool(k[0], false)
			if err != nil {
				return nil, err
			}
			if !on {
				return nil, fmt.Errorf("%w %q: set it true and use state to enable or disable it", playbooks.ErrArgs, k[0])
			}
			items = append(items, fwItem{k[1], ""})
		}
	}
	if pf, ok := a["port_forward"].([]any); ok {
		for i, e := range pf {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w \"port_forward[%d]\": expected a mapping with port, proto, toport, toaddr", playbooks.ErrArgs, i)
			}
			var parts []string
			for _, k := range []string{"port", "proto", "toport", "toaddr"} {
				if v, ok := m[k]; ok && v != nil && fmt.Sprint(v) != "" {
					parts = append(parts, k+"="+fmt.Sprint(v))
				}
			}
			items = append(items, fwItem{"forward-port", strings.Join(parts, ":")})
		}
	} else if a.Has("port_forward") {
		return nil, fmt.Errorf("%w \"port_forward\": expected a list of mappings", playbooks.ErrArgs)
	}
	return items, nil
}
