package hostmods

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"orch/playbooks"
)

// userArgNames are the user module's arguments.
var userArgNames = []string{"name", "user", "state", "uid", "group", "groups", "append", "shell", "home", "create_home",
	"createhome", "move_home", "system", "comment", "password", "update_password", "remove", "force", "non_unique",
	"skeleton", "expires", "password_lock", "local", "umask", "seuser", "hidden", "login_class", "profile",
	"authorization", "role", "password_expire_max", "password_expire_min", "generate_ssh_key", "ssh_key_bits",
	"ssh_key_type", "ssh_key_file", "ssh_key_comment", "ssh_key_passphrase"}

// account is a user as getent and id show it.
type account struct {
	exists                     bool
	uid, gid                   string
	comment, home, shell, hash string
	group                      string   // primary group name
	groups                     []string // supplementary groups
}

// userModule creates, changes or removes a local user with useradd/usermod/userdel after
// reading the account (passwd, shadow, groups) in one command.
func userModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("user", a, userArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	name, _ := strArg(a, "", "name", "user")
	if name == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	cur, err := readAccount(ctx, t, name)
	if err != nil {
		return playbooks.Result{}, err
	}
	res := playbooks.Result{Data: map[string]any{"name": name, "state": state}}
	if state == "absent" {
		if !cur.exists {
			return res, nil
		}
		cmd := []string{"userdel"}
		if rm, _ := a.Bool("remove", false); rm {
			cmd = append(cmd, "-r")
		}
		if f, _ := a.Bool("force", false); f {
			cmd = append(cmd, "-f")
		}
		return res, hostChange(ctx, t, "remove user "+name, append(cmd, name))
	}
	var cmd []string
	if !cur.exists {
		cmd, err = useradd(a, name)
	} else {
		cmd, err = usermod(a, name, cur)
	}
	if err != nil {
		return playbooks.Result{}, err
	}
	if len(cmd) > 0 {
		verb := map[bool]string{true: "change user ", false: "create user "}[cur.exists]
		if err := hostChange(ctx, t, verb+name, cmd); err != nil {
			return res, err
		}
		if !t.Check {
			if cur, err = readAccount(ctx, t, name); err != nil {
				return res, err
			}
		}
	}
	sys, _ := a.Bool("system", false)
	create, _ := boolArg(a, true, "create_home", "createhome")
	appendOnly, _ := a.Bool("append", false)
	move, _ := a.Bool("move_home", false)
	for k, v := range map[string]any{"uid": atoi(cur.uid), "group": atoi(cur.gid), "home": cur.home, "shell": cur.shell,
		"comment": cur.comment, "groups": strings.Join(cur.groups, ","), "system": sys, "append": appendOnly,
		"move_home": move, "create_home": create} {
		res.Data[k] = v
	}
	if a.Has("password") {
		res.Data["password"] = "NOT_LOGGING_PASSWORD"
	}
	return res, nil
}

func atoi(s string) any {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return s
}

// readAccount reads a user's passwd and shadow entries and groups.
func readAccount(ctx context.Context, t *playbooks.TaskContext, name string) (account, error) {
	script := "n=" + q(name) + "\npw=$(getent passwd -- \"$n\") || { echo exists=no; exit 0; }\necho \"pw=$pw\"\n" +
		"echo \"sh=$(getent shadow -- \"$n\" 2>/dev/null | cut -d: -f2)\"\necho \"grp=$(id -gn -- \"$n\")\"\necho \"groups=$(id -Gn -- \"$n\")\""
	o, err := runOK(ctx, t, "reading user "+name, script, nil)
	if err != nil {
		return account{}, err
	}
	f := fields(o.stdout)
	if f["exists"] == "no" {
		return account{}, nil
	}
	pw := strings.Split(f["pw"], ":")
	if len(pw) < 7 {
		return account{}, fmt.Errorf("reading user %s: unexpected passwd entry %q", name, f["pw"])
	}
	ac := account{exists: true, uid: pw[2], gid: pw[3], comment: pw[4], home: pw[5], shell: pw[6], hash: f["sh"], group: f["grp"]}
	for _, g := range strings.Fields(f["groups"]) {
		if g != ac.group {
			ac.groups = append(ac.groups, g)
		}
	}
	return ac, nil
}

// hostChange runs argv (quoted) on the host through the gate.
func hostChange(ctx context.Context, t *playbooks.TaskContext, desc string, argv []string) error {
	return t.Change(desc, func() error {
		_, err := runOK(ctx, t, desc, quoteAll(argv), nil)
		return err
	})
}

// useradd builds the command creating the user.
func useradd(a playbooks.Args, name string) ([]string, error) {
	cmd := []string{"useradd"}
	for _, o := range []struct{ arg, flag string }{{"uid", "-u"}, {"group", "-g"}, {"shell", "-s"}, {"home", "-d"},
		{"comment", "-c"}, {"password", "-p"}, {"skeleton", "-k"}, {"expires", "-e"}} {
		if v, _ := a.String(o.arg, ""); v != "" {
			cmd = append(cmd, o.flag, v)
		}
	}
	groups, err := listArg(a, "groups")
	if err != nil {
		return nil, err
	}
	if len(groups) > 0 {
		cmd = append(cmd, "-G", strings.Join(groups, ","))
	}
	sys, _ := a.Bool("system", false)
	if sys {
		cmd = append(cmd, "-r")
	}
	if nu, _ := a.Bool("non_unique", false); nu {
		cmd = append(cmd, "-o")
	}
	create, err := boolArg(a, true, "create_home", "createhome")
	if err != nil {
		return nil, err
	}
	if create && !sys {
		cmd = append(cmd, "-m")
	} else if !create {
		cmd = append(cmd, "-M")
	}
	return append(cmd, name), nil
}

// usermod builds the command bringing an existing user to the arguments, nil if it is.
func usermod(a playbooks.Args, name string, cur account) ([]string, error) {
	var cmd []string
	for _, o := range []struct {
		arg, flag, have string
	}{{"uid", "-u", cur.uid}, {"shell", "-s", cur.shell}, {"home", "-d", cur.home}, {"comment", "-c", cur.comment}} {
		if v, _ := a.String(o.arg, ""); a.Has(o.arg) && v != o.have {
			cmd = append(cmd, o.flag, v)
			if o.arg == "home" {
				if mv, _ := a.Bool("move_home", false); mv {
					cmd = append(cmd, "-m")
				}
			}
		}
	}
	if g, _ := a.String("group", ""); g != "" && g != cur.group && g != cur.gid {
		cmd = append(cmd, "-g", g)
	}
	if a.Has("groups") {
		want, err := listArg(a, "groups")
		if err != nil {
			return nil, err
		}
		appendOnly, _ := a.Bool("append", false)
		if g := groupsChange(want, cur.groups, appendOnly); g != nil {
			if appendOnly {
				cmd = append(cmd, "-a")
			}
			cmd = append(cmd, "-G", strings.Join(g, ","))
		}
	}
	if pw, _ := a.String("password", ""); a.Has("password") && pw != cur.hash {
		if up, _ := a.String("update_password", "always"); up == "always" {
			cmd = append(cmd, "-p", pw)
		}
	}
	if len(cmd) == 0 {
		return nil, nil
	}
	return append(append([]string{"usermod"}, cmd...), name), nil
}

// groupsChange returns the -G list that brings have to want (only the missing ones with
// append), nil when nothing changes.
func groupsChange(want, have []string, appendOnly bool) []string {
	var missing []string
	for _, g := range want {
		if !slices.Contains(have, g) {
			missing = append(missing, g)
		}
	}
	if appendOnly {
		return missing
	}
	a, b := slices.Clone(want), slices.Clone(have)
	slices.Sort(a)
	slices.Sort(b)
	if slices.Equal(slices.Compact(a), b) {
		return nil
	}
	if len(want) == 0 {
		return []string{""}
	}
	return want
}

// groupModule creates, changes (gid) or removes a local group.
func groupModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("group", a, "name", "state", "gid", "system", "local", "non_unique", "force", "gid_min", "gid_max"); err != nil {
		return playbooks.Result{}, err
	}
	name, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	gid, _ := a.String("gid", "")
	sys, _ := a.Bool("system", false)
	o, err := runOK(ctx, t, "reading group "+name, "getent group -- "+q(name)+" || true", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	ent := strings.Split(strings.TrimSpace(o.stdout), ":")
	exists := len(ent) >= 3
	res := playbooks.Result{Data: map[string]any{"name": name, "state": state, "system": sys}}
	switch {
	case state == "absent" && exists:
		return res, hostChange(ctx, t, "remove group "+name, []string{"groupdel", name})
	case state == "absent":
		return res, nil
	case !exists:
		cmd := []string{"groupadd"}
		if gid != "" {
			cmd = append(cmd, "-g", gid)
		}
		if sys {
			cmd = append(cmd, "-r")
		}
		if nu, _ := a.Bool("non_unique", false); nu {
			cmd = append(cmd, "-o")
		}
		if err := hostChange(ctx, t, "create group "+name, append(cmd, name)); err != nil {
			return res, err
		}
	case gid != "" && gid != ent[2]:
		if err := hostChange(ctx, t, "change gid of group "+name, []string{"groupmod", "-g", gid, name}); err != nil {
			return res, err
		}
	default:
		res.Data["gid"] = atoi(ent[2])
		return res, nil
	}
	if !t.Check {
		if o, err := runOK(ctx, t, "reading group "+name, "getent group -- "+q(name), nil); err == nil {
			if e := strings.Split(strings.TrimSpace(o.stdout), ":"); len(e) >= 3 {
				res.Data["gid"] = atoi(e[2])
			}
		}
	}
	return res, nil
}
