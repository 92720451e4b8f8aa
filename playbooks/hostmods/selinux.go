package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"orch/playbooks"
)

// selinuxLine matches SELINUX= and SELINUXTYPE= lines of the config file.
var selinuxLine = regexp.MustCompile(`(?m)^(SELINUX|SELINUXTYPE)=(.*)$`)

// selinux sets SELinux's state and policy as ansible.posix.selinux: SELINUX= and
// SELINUXTYPE= in configfile, and `setenforce` when SELinux runs and the state asked is
// enforcing or permissive (disabled, or enabling a disabled SELinux, needs a reboot:
// reboot_required). The runtime state (getenforce) and the file are read in one command.
func selinuxModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("selinux", a, "policy", "state", "configfile", "conf", "file", "update_kernel_param"); err != nil {
		return playbooks.Result{}, err
	}
	state, err := a.Required("state")
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := choice("state", state, "enforcing", "permissive", "disabled"); err != nil {
		return playbooks.Result{}, err
	}
	if k, _ := a.Bool("update_kernel_param", false); k {
		return playbooks.Result{}, fmt.Errorf("%w \"update_kernel_param\": grubby is not driven by orch", playbooks.ErrArgs)
	}
	conf, _ := strArg(a, "/etc/selinux/config", "configfile", "conf", "file")
	policy, _ := a.String("policy", "")
	f, extra, err := readTextFileWith(ctx, t, conf, "command -v getenforce >/dev/null 2>&1 && echo \"runtime=$(getenforce)\"")
	if err != nil {
		return playbooks.Result{}, err
	}
	if !f.exists {
		return playbooks.Result{Failed: true, Msg: "Unable to find file " + conf}, nil
	}
	cfg := map[string]string{}
	for _, m := range selinuxLine.FindAllStringSubmatch(f.content, -1) {
		cfg[m[1]] = strings.TrimSpace(m[2])
	}
	if policy == "" {
		if state != "disabled" {
			return playbooks.Result{Failed: true, Msg: "Policy is required if state is not 'disabled'"}, nil
		}
		policy = cfg["SELINUXTYPE"]
	}
	runtime := strings.ToLower(extra["runtime"])
	if runtime == "" {
		runtime = "disabled"
	}
	res := playbooks.Result{Data: map[string]any{"configfile": conf, "policy": policy, "state": state, "reboot_required": false}}
	var msgs []string
	content := f.content
	if policy != cfg["SELINUXTYPE"] {
		content = setSelinuxKey(content, "SELINUXTYPE", policy)
		msgs = append(msgs, fmt.Sprintf("SELinux policy configuration in '%s' changed from '%s' to '%s'", conf, cfg["SELINUXTYPE"], policy))
	}
	if state != runtime {
		switch {
		case runtime == "disabled" || state == "disabled":
			res.Data["reboot_required"] = true
		default:
			flag := map[string]string{"enforcing": "1", "permissive": "0"}[state]
			msgs = append(msgs, fmt.Sprintf("SELinux state changed from '%s' to '%s'", runtime, state))
			if err := t.Change("setenforce "+flag, func() error {
				_, err := runOK(ctx, t, "setenforce "+flag, "setenforce "+flag, nil)
				return err
			}); err != nil {
				return res, err
			}
		}
	}
	if state != cfg["SELINUX"] {
		content = setSelinuxKey(content, "SELINUX", state)
		msgs = append(msgs, fmt.Sprintf("Config SELinux state changed from '%s' to '%s'", cfg["SELINUX"], state))
	}
	res.Msg = strings.Join(msgs, ", ")
	res.Data["msg"] = res.Msg
	if content == f.content {
		return res, nil
	}
	edit, err := editArgs(playbooks.Args{}, conf)
	if err != nil {
		return res, err
	}
	return res, edit.apply(ctx, t, f, content, &res)
}

// setSelinuxKey replaces key's lines (KEY=...) with KEY=value, or appends one.
func setSelinuxKey(content, key, value string) string {
	re := regexp.MustCompile(`(?m)^` + key + `=.*$`)
	if re.MatchString(content) {
		return re.ReplaceAllLiteralString(content, key+"="+value)
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return content + key + "=" + value + "\n"
}

// seboolean sets an SELinux boolean (setsebool, -P with persistent) when getsebool shows
// another value; on a host where SELinux does not run it fails as Ansible's does unless
// ignore_selinux_state.
func sebooleanModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("seboolean", a, "name", "state", "persistent", "ignore_selinux_state"); err != nil {
		return playbooks.Result{}, err
	}
	name, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	if !a.Has("state") {
		return playbooks.Result{}, fmt.Errorf("%w \"state\": required", playbooks.ErrArgs)
	}
	state, err := a.Bool("state", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	persistent, err := a.Bool("persistent", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	ignore, err := a.Bool("ignore_selinux_state", false)
	if err != nil {
		return playbooks.Result{}, err
	}
	o, err := runOK(ctx, t, "getsebool "+name, "command -v getenforce >/dev/null 2>&1 && echo \"runtime=$(getenforce)\"\n"+
		"command -v getsebool >/dev/null 2>&1 && echo \"value=$(getsebool "+q(name)+" 2>/dev/null)\"; exit 0", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	f := fields(o.stdout)
	data := map[string]any{"name": name, "state": state, "persistent": persistent}
	if (f["runtime"] == "" || f["runtime"] == "Disabled") && !ignore {
		return playbooks.Result{Failed: true, Msg: "SELinux is disabled on this host.", Data: data}, nil
	}
	cur, ok := strings.CutPrefix(f["value"], name+" --> ")
	if !ok {
		return playbooks.Result{Failed: true, Msg: "SELinux boolean " + name + " does not exist.", Data: data}, nil
	}
	want := map[bool]string{true: "on", false: "off"}[state]
	if strings.HasPrefix(cur, want) {
		return playbooks.Result{Data: data}, nil
	}
	cmd := "setsebool "
	if persistent {
		cmd += "-P "
	}
	cmd += q(name) + " " + want
	return playbooks.Result{Data: data}, t.Change(cmd, func() error {
		_, err := runOK(ctx, t, cmd, cmd, nil)
		return err
	})
}
