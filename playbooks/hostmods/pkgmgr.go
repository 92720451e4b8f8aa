package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// pkgTool describes one operating system's package manager as its Ansible module drives
// it: how to list which of the named packages are installed and which are outdated (one
// probe), and the install, upgrade and remove commands.
type pkgTool struct {
	module, bin string
	// args are the module's arguments beyond name and state.
	args []string
	// states maps the module's states to present, latest or absent.
	states map[string]string
	// probe prints "installed=NAME" for each installed one of names, "outdated=NAME" for
	// each (with latest) that has a newer version.
	probe func(s pkgSpec) string
	// install, upgrade, remove build the change commands for names.
	install, upgrade, remove func(s pkgSpec, names []string) string
	// refresh is the cache-update command, "" if the module has none.
	refresh func(s pkgSpec) string
	// upgradeAll is the whole-system upgrade (upgrade: true), "" if none.
	upgradeAll func(s pkgSpec) string
}

// pkgSpec is a parsed task of a pkgTool module.
type pkgSpec struct {
	tool        *pkgTool
	bin         string
	names       []string
	state       string // present, latest, absent
	extra       []string
	a           playbooks.Args
	updateCache bool
	upgrade     bool
}

func (s pkgSpec) flag(name string) bool  { b, _ := s.a.Bool(name, false); return b }
func (s pkgSpec) str(name string) string { v, _ := s.a.String(name, ""); return v }

// run is the module: probe, decide, then one change command.
func (p *pkgTool) run(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	allowed := append([]string{"name", "pkg", "package", "state", "executable"}, p.args...)
	if err := playbooks.AllowArgs(p.module, a, allowed...); err != nil {
		return playbooks.Result{}, err
	}
	s := pkgSpec{tool: p, bin: p.bin, a: a}
	var err error
	if s.names, err = listArg(a, "name", "pkg", "package"); err != nil {
		return playbooks.Result{}, err
	}
	state, _ := a.String("state", "present")
	var ok bool
	if s.state, ok = p.states[state]; !ok {
		keys := make([]string, 0, len(p.states))
		for k := range p.states {
			keys = append(keys, k)
		}
		sortStrings(keys)
		return playbooks.Result{}, choice("state", state, keys...)
	}
	if s.bin, err = a.String("executable", p.bin); err != nil {
		return playbooks.Result{}, err
	}
	if s.extra, err = listExtra(a, "extra_args"); err != nil {
		return playbooks.Result{}, err
	}
	if s.updateCache, err = a.Bool("update_cache", false); err != nil {
		return playbooks.Result{}, err
	}
	if s.upgrade, err = a.Bool("upgrade", false); err != nil {
		return playbooks.Result{}, err
	}
	if len(s.names) == 0 && !s.updateCache && !s.upgrade {
		return playbooks.Result{}, fmt.Errorf("%w: one of name, update_cache or upgrade is required", playbooks.ErrArgs)
	}
	res := playbooks.Result{Data: map[string]any{"packages": toAny(nil)}}
	if s.updateCache && p.refresh != nil {
		cmd := p.refresh(s)
		if err := t.Change(cmd, func() error {
			_, err := runOK(ctx, t, p.module+" cache update", cmd, nil)
			return err
		}); err != nil {
			return res, err
		}
		res.Msg = "updated the package cache"
	}
	if s.upgrade && p.upgradeAll != nil {
		cmd := p.upgradeAll(s)
		// the probe with no names lists every outdated package
		out, err := s.runProbe(ctx, t, true)
		if err != nil {
			return res, err
		}
		if len(out["outdated"]) > 0 {
			if err := t.Change(cmd, func() error {
				_, err := runOK(ctx, t, p.module+" upgrade", cmd, nil)
				return err
			}); err != nil {
				return res, err
			}
			res.Data["packages"] = toAny(out["outdated"])
		}
	}
	if len(s.names) == 0 {
		return res, nil
	}
	out, err := s.runProbe(ctx, t, false)
	if err != nil {
		if strings.Contains(err.Error(), "exit code 127") {
			return playbooks.Result{Failed: true, Msg: fmt.Sprintf("%s not found on the host: is this the right package manager for it?", s.bin)}, nil
		}
		return res, err
	}
	installed := map[string]bool{}
	for _, n := range out["installed"] {
		installed[n] = true
	}
	var todo []string
	var cmd string
	switch s.state {
	case "present":
		for _, n := range s.names {
			if !installed[n] {
				todo = append(todo, n)
			}
		}
		if len(todo) > 0 {
			cmd = p.install(s, todo)
		}
	case "latest":
		outdated := map[string]bool{}
		for _, n := range out["outdated"] {
			outdated[n] = true
		}
		var missing, old []string
		for _, n := range s.names {
			switch {
			case !installed[n]:
				missing = append(missing, n)
			case outdated[n]:
				old = append(old, n)
			}
		}
		todo = append(missing, old...)
		switch {
		case len(missing) > 0 && len(old) > 0:
			cmd = p.install(s, missing) + " && " + p.upgrade(s, old)
		case len(missing) > 0:
			cmd = p.install(s, missing)
		case len(old) > 0:
			cmd = p.upgrade(s, old)
		}
	case "absent":
		for _, n := range s.names {
			if installed[n] {
				todo = append(todo, n)
			}
		}
		if len(todo) > 0 {
			cmd = p.remove(s, todo)
		}
	}
	if cmd == "" {
		if res.Msg == "" {
			res.Msg = "package(s) already " + map[string]string{"present": "installed", "latest": "up to date", "absent": "absent"}[s.state]
		}
		return res, nil
	}
	res.Data["packages"] = toAny(todo)
	res.Msg = fmt.Sprintf("%s %d package(s)", map[string]string{"present": "installed", "latest": "installed or upgraded", "absent": "removed"}[s.state], len(todo))
	return res, t.Change(cmd, func() error {
		o, err := runOK(ctx, t, p.module, cmd, nil)
		if err == nil {
			res.Data["stdout"], res.Data["stderr"] = o.stdout, o.stderr
		}
		return err
	})
}

// runProbe runs the tool's probe; all asks for every outdated package (names ignored).
func (s pkgSpec) runProbe(ctx context.Context, t *playbooks.TaskContext, all bool) (map[string][]string, error) {
	if all {
		s.names = nil
	}
	o, err := run(ctx, t, "command -v "+q(s.bin)+" >/dev/null 2>&1 || exit 127\n"+s.tool.probe(s), nil)
	if err != nil {
		return nil, err
	}
	if err := o.err(s.tool.module + " query"); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, l := range strings.Split(o.stdout, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok && v != "" {
			out[k] = append(out[k], v)
		}
	}
	return out, nil
}

// listExtra splits an extra_args string as a shell would split plain words.
func listExtra(a playbooks.Args, name string) ([]string, error) {
	if !a.Has(name) {
		return nil, nil
	}
	v, err := a.String(name, "")
	return strings.Fields(v), err
}

// words quotes names and joins them.
func words(l []string) string { return shellJoin(l) }

// eachName is a probe loop: for each of names, cond (a shell condition on "$n") true prints
// "installed=$n".
func eachName(names []string, cond string) string {
	if len(names) == 0 {
		return ""
	}
	return "for n in " + words(names) + "; do if " + cond + "; then echo \"installed=$n\"; fi; done\n"
}

// pacman is community.general.pacman: installed names come from `pacman -T` (dependency
// test: a name a provider satisfies counts), outdated from `pacman -Qu`.
var pacmanTool = &pkgTool{
	module: "pacman", bin: "pacman",
	args:   []string{"extra_args", "update_cache", "update_cache_extra_args", "upgrade", "upgrade_extra_args", "force", "remove_nosave", "reason", "reason_for"},
	states: map[string]string{"present": "present", "installed": "present", "latest": "latest", "absent": "absent", "removed": "absent"},
	probe: func(s pkgSpec) string {
		b := eachName(s.names, q(s.bin)+" --deptest \"$n\" >/dev/null 2>&1")
		if s.state == "latest" || len(s.names) == 0 {
			b += q(s.bin) + " --query --upgrades --quiet 2>/dev/null | sed 's/^/outdated=/'\n"
		}
		return b
	},
	install: func(s pkgSpec, names []string) string {
		return shellJoin(append(append([]string{s.bin, "--noconfirm", "--noprogressbar", "--needed", "--sync"}, s.extra...), names...))
	},
	upgrade: func(s pkgSpec, names []string) string {
		return shellJoin(append(append([]string{s.bin, "--noconfirm", "--noprogressbar", "--sync"}, s.extra...), names...))
	},
	remove: func(s pkgSpec, names []string) string {
		argv := []string{s.bin, "--noconfirm", "--noprogressbar", "--remove"}
		if s.flag("remove_nosave") {
			argv = append(argv, "--nosave")
		}
		if s.flag("force") {
			argv = append(argv, "--nodeps", "--nodeps")
		}
		return shellJoin(append(append(argv, s.extra...), names...))
	},
	refresh: func(s pkgSpec) string {
		return shellJoin(append([]string{s.bin, "--sync", "--refresh"}, strings.Fields(s.str("update_cache_extra_args"))...))
	},
	upgradeAll: func(s pkgSpec) string {
		return shellJoin(append([]string{s.bin, "--noconfirm", "--noprogressbar", "--sync", "--sysupgrade"}, strings.Fields(s.str("upgrade_extra_args"))...))
	},
}

// pkgng is community.general.pkgng (FreeBSD's pkg): `pkg info -e` says installed,
// `pkg version -l '<'` lists outdated ones; rootdir, chroot and jail select the target.
var pkgngTool = &pkgTool{
	module: "pkgng", bin: "pkg",
	args:   []string{"cached", "annotation", "pkgsite", "rootdir", "chroot", "jail", "autoremove", "ignore_osver", "use_globs"},
	states: map[string]string{"present": "present", "installed": "present", "latest": "latest", "absent": "absent", "removed": "absent"},
	probe: func(s pkgSpec) string {
		b := eachName(s.names, pkgngCmd(s)+" info -e \"$n\" 2>/dev/null")
		if s.state == "latest" || len(s.names) == 0 {
			b += pkgngCmd(s) + " version -q -l '<' 2>/dev/null | sed 's/-[^-]*$//; s/^/outdated=/'\n"
		}
		return b
	},
	install: func(s pkgSpec, names []string) string {
		return pkgngCmd(s) + " install -y" + pkgngRepo(s) + " " + words(names)
	},
	upgrade: func(s pkgSpec, names []string) string {
		return pkgngCmd(s) + " upgrade -y" + pkgngRepo(s) + " " + words(names)
	},
	remove: func(s pkgSpec, names []string) string {
		c := pkgngCmd(s) + " delete -y " + words(names)
		if s.flag("autoremove") {
			c += " && " + pkgngCmd(s) + " autoremove -y"
		}
		return c
	},
}

func pkgngCmd(s pkgSpec) string {
	c := q(s.bin)
	switch {
	case s.str("rootdir") != "":
		c += " --rootdir " + q(s.str("rootdir"))
	case s.str("chroot") != "":
		c += " --chroot " + q(s.str("chroot"))
	case s.str("jail") != "":
		c += " --jail " + q(s.str("jail"))
	}
	if s.flag("ignore_osver") {
		c = "IGNORE_OSVERSION=yes " + c
	}
	return c
}

func pkgngRepo(s pkgSpec) string {
	r := ""
	if s.flag("cached") {
		r += " --no-repo-update"
	}
	if site := s.str("pkgsite"); site != "" {
		r += " --repository " + q(site)
	}
	return r
}

// openbsd_pkg is community.general.openbsd_pkg: pkg_info -e 'NAME-*' says installed (a
// name may carry a version or flavor: then it is matched as given), pkg_add -u upgrades.
var openbsdPkgTool = &pkgTool{
	module: "openbsd_pkg", bin: "pkg_add",
	args:   []string{"build", "ports_dir", "quick", "clean", "snapshot", "autoremove"},
	states: map[string]string{"present": "present", "installed": "present", "latest": "latest", "absent": "absent", "removed": "absent"},
	probe: func(s pkgSpec) string {
		b := eachName(s.names, "case \"$n\" in *-[0-9]*) pkg_info -e \"$n\" >/dev/null 2>&1 ;; *) pkg_info -e \"$n-*\" >/dev/null 2>&1 ;; esac")
		if s.state == "latest" {
			b += "for n in " + words(s.names) + "; do pkg_add -u -n \"$n\" 2>/dev/null | grep -q -- '->' && echo \"outdated=$n\"; done; :\n"
		}
		return b
	},
	install: func(s pkgSpec, names []string) string {
		argv := []string{"pkg_add", "-I"}
		if s.flag("snapshot") {
			argv = append(argv, "-Dsnap")
		}
		return shellJoin(append(argv, names...))
	},
	upgrade: func(s pkgSpec, names []string) string {
		return shellJoin(append([]string{"pkg_add", "-I", "-u"}, names...))
	},
	remove: func(s pkgSpec, names []string) string {
		argv := []string{"pkg_delete", "-I"}
		if s.flag("quick") {
			argv = append(argv, "-q")
		}
		if s.flag("clean") {
			argv = append(argv, "-c")
		}
		return shellJoin(append(argv, names...))
	},
	upgradeAll: func(s pkgSpec) string { return "pkg_add -I -u" },
}

// zypper is community.general.zypper (SUSE): rpm -q says installed, `zypper list-updates`
// lists outdated ones; changes run zypper non-interactively.
var zypperTool = &pkgTool{
	module: "zypper", bin: "zypper",
	args: []string{"type", "extra_args", "extra_args_precommand", "disable_gpg_check", "disable_recommends", "update_cache",
		"oldpackage", "force", "force_resolution", "replacefiles", "clean_deps", "allow_vendor_change", "simple_errors", "quiet", "skip_post_errors"},
	states: map[string]string{"present": "present", "installed": "present", "latest": "latest", "absent": "absent", "removed": "absent", "dist-upgrade": "latest"},
	probe: func(s pkgSpec) string {
		b := eachName(s.names, "rpm -q --whatprovides \"$n\" >/dev/null 2>&1")
		if s.state == "latest" || len(s.names) == 0 {
			b += zypperCmd(s) + " --quiet list-updates 2>/dev/null | awk -F'|' 'NR>2 {gsub(/ /, \"\", $3); if ($3 != \"\") print \"outdated=\" $3}'\n"
		}
		return b
	},
	install: func(s pkgSpec, names []string) string { return zypperChange(s, "install", names) },
	upgrade: func(s pkgSpec, names []string) string { return zypperChange(s, "update", names) },
	remove:  func(s pkgSpec, names []string) string { return zypperChange(s, "remove", names) },
	refresh: func(s pkgSpec) string { return zypperCmd(s) + " refresh" },
}

func zypperCmd(s pkgSpec) string {
	c := q(s.bin) + " --non-interactive"
	if s.flag("disable_gpg_check") {
		c += " --no-gpg-checks"
	}
	if pre := s.str("extra_args_precommand"); pre != "" {
		c += " " + pre
	}
	return c
}

func zypperChange(s pkgSpec, verb string, names []string) string {
	argv := []string{verb}
	if t := s.str("type"); t != "" {
		argv = append(argv, "--type", t)
	}
	if verb != "remove" {
		argv = append(argv, "--auto-agree-with-licenses")
		if s.flag("disable_recommends") || !s.a.Has("disable_recommends") {
			argv = append(argv, "--no-recommends")
		}
		if s.flag("oldpackage") {
			argv = append(argv, "--oldpackage")
		}
		if s.flag("force") {
			argv = append(argv, "--force")
		}
		if s.flag("force_resolution") {
			argv = append(argv, "--force-resolution")
		}
		if s.flag("replacefiles") {
			argv = append(argv, "--replacefiles")
		}
		if s.flag("allow_vendor_change") {
			argv = append(argv, "--allow-vendor-change")
		}
	} else if s.flag("clean_deps") {
		argv = append(argv, "--clean-deps")
	}
	argv = append(append(argv, s.extra...), names...)
	return zypperCmd(s) + " " + shellJoin(argv)
}

// sortStrings sorts in place (insertion sort: the lists are a handful of names).
func sortStrings(l []string) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j] < l[j-1]; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}
