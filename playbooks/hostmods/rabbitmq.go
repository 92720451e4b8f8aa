package hostmods

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"orch/playbooks"
)

// rabbitmqctl is the rabbitmqctl (or rabbitmq-plugins) command with the node option.
func rabbitmqctl(tool, node string, args ...string) string {
	argv := []string{tool, "-q"}
	if node != "" {
		argv = append(argv, "-n", node)
	}
	return shellJoin(append(argv, args...))
}

const rabbitmqMissing = "command -v rabbitmqctl >/dev/null 2>&1 || { echo 'rabbitmqctl not found on the host (is rabbitmq-server installed?)' >&2; exit 127; }\n"

// rabbitmqRun runs a change script and turns a failure into an error.
func rabbitmqRun(ctx context.Context, t *playbooks.TaskContext, what, script string, stdin string) error {
	_, err := runOK(ctx, t, what, script, strings.NewReader(stdin))
	return err
}

// rabbitmqPluginModule is community.rabbitmq.rabbitmq_plugin: `rabbitmq-plugins list -E -m`
// gives the explicitly enabled plugins; enabled enables the missing names and (without
// new_only) disables the other enabled ones, disabled disables the named ones that are
// enabled. broker_state offline adds --offline.
func rabbitmqPluginModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("rabbitmq_plugin", a, "names", "name", "state", "new_only", "prefix", "broker_state"); err != nil {
		return playbooks.Result{}, err
	}
	names, err := listArg(a, "names", "name")
	if err != nil || len(names) == 0 {
		return playbooks.Result{}, orErr(err, fmt.Errorf("%w \"names\": required", playbooks.ErrArgs))
	}
	state, _ := a.String("state", "enabled")
	if err := choice("state", state, "enabled", "disabled"); err != nil {
		return playbooks.Result{}, err
	}
	newOnly, _ := a.Bool("new_only", false)
	broker, _ := a.String("broker_state", "online")
	if err := choice("broker_state", broker, "online", "offline"); err != nil {
		return playbooks.Result{}, err
	}
	tool := "rabbitmq-plugins"
	if prefix, _ := a.String("prefix", ""); prefix != "" {
		tool = strings.TrimRight(prefix, "/") + "/sbin/rabbitmq-plugins"
	}
	o, err := run(ctx, t, "command -v "+q(tool)+" >/dev/null 2>&1 || { echo '"+tool+" not found on the host' >&2; exit 127; }\n"+shellJoin([]string{tool, "list", "-E", "-m"}), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := o.err("rabbitmq-plugins list"); err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	enabled := strings.Fields(o.stdout)
	enable, disable := rabbitmqPluginPlan(names, enabled, state, newOnly)
	res := playbooks.Result{Data: map[string]any{"enabled": toAny(enable), "disabled": toAny(disable)}}
	var cmds []string
	offline := map[bool][]string{true: {"--offline"}}[broker == "offline"]
	if len(enable) > 0 {
		cmds = append(cmds, shellJoin(append(append([]string{tool, "enable"}, offline...), enable...)))
	}
	if len(disable) > 0 {
		cmds = append(cmds, shellJoin(append(append([]string{tool, "disable"}, offline...), disable...)))
	}
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(cmds, "; "), func() error {
		return rabbitmqRun(ctx, t, "rabbitmq-plugins", "set -e\n"+strings.Join(cmds, "\n"), "")
	})
}

// rabbitmqPluginPlan returns the plugins to enable and to disable.
func rabbitmqPluginPlan(names, enabled []string, state string, newOnly bool) (enable, disable []string) {
	for _, n := range names {
		on := containsStr(enabled, n)
		if state == "enabled" && !on {
			enable = append(enable, n)
		}
		if state == "disabled" && on {
			disable = append(disable, n)
		}
	}
	if state == "enabled" && !newOnly {
		for _, e := range enabled {
			if !containsStr(names, e) {
				disable = append(disable, e)
			}
		}
	}
	return enable, disable
}

// rabbitmqVhostModule is community.rabbitmq.rabbitmq_vhost: list_vhosts decides; add_vhost,
// delete_vhost, and trace_on/trace_off for tracing.
func rabbitmqVhostModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("rabbitmq_vhost", a, "name", "vhost", "state", "tracing", "trace", "node"); err != nil {
		return playbooks.Result{}, err
	}
	name, _ := strArg(a, "", "name", "vhost")
	if name == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	tracing, _ := (playbooks.Args{"t": firstSet(a, "tracing", "trace")}).Bool("t", false)
	node, _ := a.String("node", "rabbit")
	o, err := run(ctx, t, rabbitmqMissing+rabbitmqctl("rabbitmqctl", node, "list_vhosts", "name", "tracing"), nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := o.err("rabbitmqctl list_vhosts"); err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	exists, traced := false, false
	for _, l := range strings.Split(o.stdout, "\n") {
		f := strings.Split(l, "\t")
		if f[0] == name {
			exists, traced = true, len(f) > 1 && f[1] == "true"
		}
	}
	var cmds []string
	switch {
	case state == "absent" && exists:
		cmds = append(cmds, rabbitmqctl("rabbitmqctl", node, "delete_vhost", name))
	case state == "present" && !exists:
		cmds = append(cmds, rabbitmqctl("rabbitmqctl", node, "add_vhost", name))
		if tracing {
			cmds = append(cmds, rabbitmqctl("rabbitmqctl", node, "trace_on", "-p", name))
		}
	case state == "present" && traced != tracing:
		cmds = append(cmds, rabbitmqctl("rabbitmqctl", node, map[bool]string{true: "trace_on", false: "trace_off"}[tracing], "-p", name))
	}
	res := playbooks.Result{Data: map[string]any{"name": name}}
	if len(cmds) == 0 {
		return res, nil
	}
	return res, t.Change(strings.Join(cmds, "; "), func() error {
		return rabbitmqRun(ctx, t, "rabbitmqctl", "set -e\n"+strings.Join(cmds, "\n"), "")
	})
}

// rabbitmqPerm is one vhost's permissions of a user.
type rabbitmqPerm struct{ vhost, configure, write, read string }

// rabbitmqUserModule is community.rabbitmq.rabbitmq_user: list_users and
// list_user_permissions are read in one command; a missing user is added (its password on
// stdin: rabbitmqctl reads it there), its tags set and its permissions set per vhost
// (cleared on vhosts no longer listed); update_password always checks the password with
// authenticate_user and changes it when it fails; force re-creates the user.
func rabbitmqUserModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("rabbitmq_user", a, "user", "name", "password", "tags", "permissions", "vhost",
		"configure_priv", "write_priv", "read_priv", "force", "state", "node", "update_password", "topic_permissions"); err != nil {
		return playbooks.Result{}, err
	}
	user, _ := strArg(a, "", "user", "name")
	if user == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"user\": required", playbooks.ErrArgs)
	}
	password, _ := a.String("password", "")
	if strings.ContainsRune(password, '\n') {
		return playbooks.Result{}, fmt.Errorf("%w \"password\": a newline is not allowed", playbooks.ErrArgs)
	}
	tags, err := listArg(a, "tags")
	if err != nil {
		return playbooks.Result{}, err
	}
	sort.Strings(tags)
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	update, _ := a.String("update_password", "on_create")
	if err := choice("update_password", update, "on_create", "always"); err != nil {
		return playbooks.Result{}, err
	}
	force, _ := a.Bool("force", false)
	node, _ := a.String("node", "rabbit")
	perms, err := rabbitmqPerms(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	ctl := func(args ...string) string { return rabbitmqctl("rabbitmqctl", node, args...) }
	probe := rabbitmqMissing + ctl("list_users") + " | sed 's/^/user=/'\n" +
		"if " + ctl("list_users") + " | cut -f1 | grep -qxF -- " + q(user) + "; then " + ctl("list_user_permissions", user) + " | sed 's/^/perm=/'\n"
	if update == "always" && password != "" {
		probe += "IFS= read -r pw; if printf '%s\\n' \"$pw\" | " + ctl("authenticate_user", user) + " >/dev/null 2>&1; then echo auth=ok; else echo auth=bad; fi\n"
	}
	probe += "fi"
	o, err := run(ctx, t, probe, strings.NewReader(password+"\n"))
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := o.err("rabbitmqctl list_users"); err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	exists, auth := false, ""
	var curTags []string
	cur := map[string]rabbitmqPerm{}
	for _, l := range strings.Split(o.stdout, "\n") {
		k, v, _ := strings.Cut(l, "=")
		f := strings.Split(v, "\t")
		switch k {
		case "user":
			if f[0] == user {
				exists = true
				if len(f) > 1 {
					curTags = strings.Fields(strings.NewReplacer("[", " ", "]", " ", ",", " ").Replace(f[1]))
					sort.Strings(curTags)
				}
			}
		case "perm":
			if len(f) == 4 {
				cur[f[0]] = rabbitmqPerm{f[0], f[1], f[2], f[3]}
			}
		case "auth":
			auth = v
		}
	}
	var cmds []string
	stdin := ""
	switch {
	case state == "absent":
		if exists {
			cmds = append(cmds, ctl("delete_user", user))
		}
	default:
		if exists && force {
			cmds = append(cmds, ctl("delete_user", user))
			exists, curTags, cur = false, nil, map[string]rabbitmqPerm{}
		}
		if !exists {
			cmds = append(cmds, "IFS= read -r pw; printf '%s\\n' \"$pw\" | "+ctl("add_user", user))
			stdin = password + "\n"
		} else if auth == "bad" {
			cmds = append(cmds, "IFS= read -r pw; printf '%s\\n' \"$pw\" | "+ctl("change_password", user))
			stdin = password + "\n"
		}
		if strings.Join(tags, ",") != strings.Join(curTags, ",") {
			cmds = append(cmds, ctl(append([]string{"set_user_tags", user}, tags...)...))
		}
		for _, p := range perms {
			if c, ok := cur[p.vhost]; !ok || c != p {
				cmds = append(cmds, ctl("set_permissions", "-p", p.vhost, user, p.configure, p.write, p.read))
			}
		}
		for vh := range cur {
			keep := false
			for _, p := range perms {
				keep = keep || p.vhost == vh
			}
			if !keep {
				cmds = append(cmds, ctl("clear_permissions", "-p", vh, user))
			}
		}
	}
	res := playbooks.Result{Data: map[string]any{"user": user, "state": state}}
	if len(cmds) == 0 {
		return res, nil
	}
	desc := strings.ReplaceAll(strings.Join(cmds, "; "), "IFS= read -r pw; printf '%s\\n' \"$pw\" | ", "")
	return res, t.Change(desc, func() error {
		return rabbitmqRun(ctx, t, "rabbitmqctl "+user, "set -e\n"+strings.Join(cmds, "\n"), stdin)
	})
}

// rabbitmqPerms reads permissions (a list of vhost/configure_priv/write_priv/read_priv) or
// the vhost and *_priv arguments.
func rabbitmqPerms(a playbooks.Args) ([]rabbitmqPerm, error) {
	get := func(m map[string]any, k, def string) string {
		if v, ok := m[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return def
	}
	if l, ok := a["permissions"].([]any); ok && len(l) > 0 {
		var out []rabbitmqPerm
		for i, e := range l {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w \"permissions[%d]\": expected a mapping", playbooks.ErrArgs, i)
			}
			out = append(out, rabbitmqPerm{get(m, "vhost", "/"), get(m, "configure_priv", "^$"), get(m, "write_priv", "^$"), get(m, "read_priv", "^$")})
		}
		return out, nil
	}
	m := map[string]any(a)
	return []rabbitmqPerm{{get(m, "vhost", "/"), get(m, "configure_priv", "^$"), get(m, "write_priv", "^$"), get(m, "read_priv", "^$")}}, nil
}
