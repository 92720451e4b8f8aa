package hostmods

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"orch/playbooks"
)

// package runs the host's package manager module (apt, dnf or yum): the `use` argument, else
// the pkg_mgr fact, else what the host has.
func packageModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	use, _ := t.Args.String("use", "auto")
	if use == "auto" {
		use = fact(t, "pkg_mgr")
	}
	if use == "" || use == "unknown" {
		o, err := runOK(ctx, t, "finding the package manager", "for m in apt-get dnf yum; do command -v $m >/dev/null && { echo $m; exit 0; }; done; echo unknown", nil)
		if err != nil {
			return playbooks.Result{}, err
		}
		use = strings.TrimSuffix(strings.TrimSpace(o.stdout), "-get")
	}
	m, ok := map[string]playbooks.Module{"apt": playbooks.ModuleFunc(aptModule), "dnf": rpmModule{tool: "dnf"},
		"dnf5": rpmModule{tool: "dnf5"}, "yum": rpmModule{tool: "yum"}}[use]
	if !ok {
		return playbooks.Result{}, fmt.Errorf("package: %w: package manager %q (orch knows apt, dnf and yum)", ErrUnsupported, use)
	}
	args := maps.Clone(t.Args)
	delete(args, "use")
	saved := t.Args
	t.Args = args
	defer func() { t.Args = saved }()
	return m.Run(ctx, t)
}

// rpmModule is dnf and yum: packages by name or local .rpm file, state present/latest/
// absent; installed versions read with rpm in one command.
type rpmModule struct{ tool string }

var rpmArgNames = []string{"name", "pkg", "state", "update_cache", "expire-cache", "disable_gpg_check", "enablerepo",
	"disablerepo", "conf_file", "installroot", "allowerasing", "autoremove", "exclude", "releasever", "security",
	"bugfix", "skip_broken", "nobest", "best", "cacheonly", "update_only", "download_only", "lock_timeout",
	"validate_certs", "disable_plugin", "enable_plugin", "install_weak_deps", "list", "use_backend", "sslverify",
	"install_repoquery", "disable_excludes", "download_dir"}

func (m rpmModule) Run(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs(m.tool, a, rpmArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	names, err := listArg(a, "name", "pkg")
	if err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "installed", "latest", "absent", "removed"); err != nil {
		return playbooks.Result{}, err
	}
	opts, err := m.options(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	tool, rpm := m.tool, "rpm"
	if root, _ := a.String("installroot", "/"); root != "/" && root != "" {
		rpm = "rpm --root " + q(root)
	}
	probe := "export LC_ALL=C\ncommand -v " + tool + " >/dev/null || { echo '" + tool + " not found' >&2; exit 127; }\n" +
		"command -v rpm >/dev/null || { echo 'rpm not found' >&2; exit 127; }\n"
	for i, n := range names {
		if isRPMFile(n) {
			probe += fmt.Sprintf("n=$(rpm -qp --qf '%%{NAME}' %[1]s 2>/dev/null) || { echo 'cannot read %[2]s' >&2; exit 2; }\n"+
				"v=$(rpm -qp --qf '%%{EPOCHNUM}:%%{VERSION}-%%{RELEASE}' %[1]s)\n"+
				"echo \"p%[3]d=$n\"; %[4]s -q --qf '%%{EPOCHNUM}:%%{VERSION}-%%{RELEASE}\\n' \"$n\" 2>/dev/null | grep -qx \"$v\" && echo i%[3]d=same\n", q(n), n, i, rpm)
		} else {
			probe += fmt.Sprintf("echo p%[1]d=%[2]s; %[3]s -q --whatprovides %[2]s >/dev/null 2>&1 && echo i%[1]d=yes\n", i, q(n), rpm)
			if state == "latest" {
				probe += fmt.Sprintf("%s -q check-update %s %s >/dev/null 2>&1; [ $? = 100 ] && echo u%d=yes\n", tool, opts, q(n), i)
			}
		}
	}
	o, err := run(ctx, t, probe+"exit 0\n", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	if o.rc != 0 {
		return playbooks.Result{Failed: true, Msg: strings.TrimSpace(o.stderr), Data: map[string]any{"rc": o.rc, "results": []any{}}}, nil
	}
	f := fields(o.stdout)
	var install, update, remove []string
	for i, n := range names {
		inst := f[fmt.Sprintf("i%d", i)]
		switch {
		case state == "absent" || state == "removed":
			if inst != "" {
				remove = append(remove, f[fmt.Sprintf("p%d", i)])
			}
		case inst == "":
			install = append(install, n)
		case state == "latest" && f[fmt.Sprintf("u%d", i)] == "yes":
			update = append(update, n)
		}
	}
	res := playbooks.Result{Data: map[string]any{"results": []any{}, "rc": 0}}
	for _, step := range []struct {
		verb string
		pkgs []string
	}{{"install", install}, {"upgrade", update}, {"remove", remove}} {
		if len(step.pkgs) == 0 || res.Failed {
			continue
		}
		if err := m.do(ctx, t, &res, opts, step.verb, step.pkgs); err != nil {
			return res, err
		}
	}
	if !res.Failed && len(install)+len(update)+len(remove) == 0 {
		res.Msg = "Nothing to do"
	}
	return res, nil
}

func isRPMFile(n string) bool { return strings.HasSuffix(n, ".rpm") }

// options are the dnf/yum options of the task.
func (m rpmModule) options(a playbooks.Args) (string, error) {
	var o []string
	if on, err := a.Bool("disable_gpg_check", false); err != nil {
		return "", err
	} else if on {
		o = append(o, "--nogpgcheck")
	}
	for _, r := range []struct{ arg, flag string }{{"enablerepo", "--enablerepo="}, {"disablerepo", "--disablerepo="}, {"exclude", "--exclude="}} {
		l, err := listArg(a, r.arg)
		if err != nil {
			return "", err
		}
		for _, x := range l {
			o = append(o, q(r.flag+x))
		}
	}
	if c, _ := a.String("conf_file", ""); c != "" {
		o = append(o, "-c", q(c))
	}
	if r, _ := a.String("installroot", ""); r != "" && r != "/" {
		o = append(o, q("--installroot="+r))
	}
	if on, _ := a.Bool("allowerasing", false); on {
		o = append(o, "--allowerasing")
	}
	if on, _ := boolArg(a, false, "update_cache", "expire-cache"); on {
		o = append(o, "--refresh")
	}
	if on, _ := a.Bool("skip_broken", false); on {
		o = append(o, "--skip-broken")
	}
	if on, _ := a.Bool("cacheonly", false); on {
		o = append(o, "--cacheonly")
	}
	if r, _ := a.String("releasever", ""); r != "" {
		o = append(o, q("--releasever="+r))
	}
	return strings.Join(o, " "), nil
}

// do runs one dnf/yum command through the gate.
func (m rpmModule) do(ctx context.Context, t *playbooks.TaskContext, res *playbooks.Result, opts, verb string, pkgs []string) error {
	script := "export LC_ALL=C\n" + m.tool + " -y " + opts + " " + verb + " " + quoteAll(pkgs)
	return t.Change(verb+" "+strings.Join(pkgs, ", "), func() error {
		o, err := run(ctx, t, script, nil)
		if err != nil {
			return err
		}
		res.Data["rc"], res.Data["stdout"], res.Data["stderr"] = o.rc, o.stdout, o.stderr
		results := res.Data["results"].([]any)
		for _, p := range pkgs {
			results = append(results, verb+": "+p)
		}
		res.Data["results"] = results
		if o.rc != 0 {
			res.Failed, res.Msg = true, fmt.Sprintf("%s %s %s failed: %s", m.tool, verb, strings.Join(pkgs, " "), lastLines(strings.TrimSpace(o.stderr+"\n"+o.stdout), 5))
		}
		return nil
	})
}
