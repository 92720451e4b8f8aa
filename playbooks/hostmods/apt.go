package hostmods

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"orch/playbooks"
)

// aptArgNames are the apt module's arguments (with Ansible's aliases).
var aptArgNames = []string{"name", "pkg", "package", "state", "update_cache", "update-cache", "cache_valid_time",
	"deb", "purge", "autoremove", "autoclean", "install_recommends", "install-recommends", "force",
	"default_release", "default-release", "upgrade", "only_upgrade", "allow_downgrade", "allow-downgrade",
	"allow_downgrades", "allow-downgrades", "allow_unauthenticated", "allow-unauthenticated", "dpkg_options",
	"force_apt_get", "lock_timeout", "policy_rc_d", "clean", "fail_on_autoremove", "allow_change_held_packages",
	"update_cache_retries", "update_cache_retry_max_delay", "auto_install_module_deps"}

// aptSpec is what an apt task asks for.
type aptSpec struct {
	names        []string
	state        string
	updateCache  bool
	validTime    int64
	deb, upgrade string
	purge        bool
	autoremove   bool
	opts         []string // apt-get options common to every call
	policyRCD    int      // policy_rc_d's exit code, -1 if not set
}

// apt installs, upgrades or removes Debian packages with apt-get, after reading the cache
// age and every named package's installed and candidate versions in one command.
func aptModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("apt", t.Args, aptArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	s, err := aptArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	p, err := aptProbe(ctx, t, s.names)
	if err != nil {
		return playbooks.Result{}, err
	}
	res := playbooks.Result{Data: map[string]any{"cache_updated": false, "cache_update_time": p.cacheTime}}
	if s.updateCache && (s.validTime == 0 || p.now-p.cacheTime > s.validTime) {
		if err := s.updateAptCache(ctx, t, &res); err != nil {
			return res, err
		}
		if res.Data["cache_updated"] == true && !t.Check {
			if p, err = aptProbe(ctx, t, s.names); err != nil {
				return res, err
			}
		}
	}
	switch {
	case s.deb != "":
		err = s.installDeb(ctx, t, &res)
	case s.upgrade != "" && s.upgrade != "no":
		err = s.upgradeAll(ctx, t, &res)
	case s.state == "build-dep" || s.state == "fixed":
		verb := map[string]string{"build-dep": "build-dep", "fixed": "--fix-broken install"}[s.state]
		err = s.decided(ctx, t, &res, verb, s.names)
	case len(s.names) > 0:
		err = s.packages(ctx, t, p, &res)
	case s.autoremove:
		err = s.decided(ctx, t, &res, "autoremove", nil)
	}
	if err != nil || res.Failed {
		return res, err
	}
	return res, s.cleanCache(ctx, t)
}

// aptCmd is the shell script of one apt-get call; with policy_rc_d, /usr/sbin/policy-rc.d
// exits with it for the duration of a real (not simulated) call, as Ansible's does.
func (s aptSpec) aptCmd(simulate bool, verb string, args []string) string {
	sim := ""
	if simulate {
		sim = "--simulate "
	}
	cmd := "export LC_ALL=C DEBIAN_FRONTEND=noninteractive\napt-get -y -q " + sim + quoteAll(s.opts) + " " + verb + " " + quoteAll(args)
	if s.policyRCD < 0 || simulate {
		return cmd
	}
	return fmt.Sprintf("printf '#!/bin/sh\\nexit %d\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d || exit 1\n%s\nrc=$?\nrm -f /usr/sbin/policy-rc.d\nexit $rc", s.policyRCD, cmd)
}

// decided runs an apt-get verb whose simulation tells whether it would do anything.
func (s aptSpec) decided(ctx context.Context, t *playbooks.TaskContext, res *playbooks.Result, verb string, args []string) error {
	return s.runDecided(ctx, t, res, "apt-get "+verb+" "+strings.Join(args, " "), s.aptCmd(true, verb, args), s.aptCmd(false, verb, args),
		func(o output) bool { return !aptNothingDone(o.stdout) })
}

// aptNothingDone reports apt-get's summary of a run that installs, upgrades and removes nothing.
func aptNothingDone(out string) bool {
	return strings.Contains("\n"+out, "\n0 upgraded, 0 newly installed, 0 to remove")
}

// cleanCache is autoclean/clean: apt-get's own cache of downloaded packages, not the
// system's state, so never a change (as in Ansible).
func (s aptSpec) cleanCache(ctx context.Context, t *playbooks.TaskContext) error {
	var verbs []string
	if on, _ := t.Args.Bool("autoclean", false); on {
		verbs = append(verbs, "autoclean")
	}
	if on, _ := t.Args.Bool("clean", false); on {
		verbs = append(verbs, "clean")
	}
	for _, v := range verbs {
		err := t.ChangeIf("apt-get "+v, func() (bool, error) {
			_, err := runOK(ctx, t, "apt-get "+v, "apt-get -q "+v, nil)
			return false, err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func aptArgs(a playbooks.Args) (aptSpec, error) {
	var s aptSpec
	var err error
	if s.names, err = listArg(a, "name", "pkg", "package"); err != nil {
		return s, err
	}
	s.state, _ = a.String("state", "present")
	if err := choice("state", s.state, "present", "installed", "latest", "absent", "removed", "fixed", "build-dep"); err != nil {
		return s, err
	}
	if s.updateCache, err = boolArg(a, false, "update_cache", "update-cache"); err != nil {
		return s, err
	}
	valid, err := a.Int("cache_valid_time", 0)
	if err != nil {
		return s, err
	}
	s.validTime = int64(valid)
	s.updateCache = s.updateCache || valid > 0
	s.deb, _ = a.String("deb", "")
	s.upgrade, _ = a.String("upgrade", "no")
	switch strings.ToLower(s.upgrade) {
	case "true", "yes":
		s.upgrade = "yes"
	case "false":
		s.upgrade = "no"
	}
	if err := choice("upgrade", s.upgrade, "no", "yes", "safe", "full", "dist"); err != nil {
		return s, err
	}
	if s.purge, err = a.Bool("purge", false); err != nil {
		return s, err
	}
	if s.autoremove, err = a.Bool("autoremove", false); err != nil {
		return s, err
	}
	s.policyRCD = -1
	if a.Has("policy_rc_d") {
		if s.policyRCD, err = a.Int("policy_rc_d", -1); err != nil {
			return s, err
		}
	}
	s.opts, err = aptOptions(a)
	return s, err
}

// boolArg is a boolean argument under the first of names that is set.
func boolArg(a playbooks.Args, def bool, names ...string) (bool, error) {
	for _, n := range names {
		if a.Has(n) {
			return a.Bool(n, def)
		}
	}
	return def, nil
}

// aptOptions are the apt-get options every call of the task gets.
func aptOptions(a playbooks.Args) ([]string, error) {
	dpkg, _ := a.String("dpkg_options", "force-confdef,force-confold")
	var o []string
	for _, d := range splitComma(dpkg) {
		o = append(o, "-o", "Dpkg::Options::=--"+d)
	}
	lock, err := a.Int("lock_timeout", 60)
	if err != nil {
		return nil, err
	}
	o = append(o, "-o", "DPkg::Lock::Timeout="+strconv.Itoa(lock))
	if a.Has("install_recommends") || a.Has("install-recommends") {
		rec, err := boolArg(a, false, "install_recommends", "install-recommends")
		if err != nil {
			return nil, err
		}
		o = append(o, map[bool]string{true: "--install-recommends", false: "--no-install-recommends"}[rec])
	}
	if rel, _ := strArg(a, "", "default_release", "default-release"); rel != "" {
		o = append(o, "-t", rel)
	}
	for _, f := range []struct{ names []string }{{[]string{"allow_downgrade", "allow-downgrade", "allow_downgrades", "allow-downgrades"}}} {
		if on, _ := boolArg(a, false, f.names...); on {
			o = append(o, "--allow-downgrades")
		}
	}
	if on, _ := boolArg(a, false, "allow_unauthenticated", "allow-unauthenticated"); on {
		o = append(o, "--allow-unauthenticated")
	}
	if on, _ := a.Bool("allow_change_held_packages", false); on {
		o = append(o, "--allow-change-held-packages")
	}
	if on, _ := a.Bool("force", false); on {
		o = append(o, "--force-yes")
	}
	return o, nil
}

// aptState is what the probe learnt.
type aptState struct {
	cacheTime, now int64
	installed      map[string]string // package → installed version ("" if not installed)
	candidate      map[string]string // package → candidate version ("" if none)
	known          map[string]bool   // packages apt-cache knows
}

// aptProbe reads the cache's age and the named packages' versions in one command.
func aptProbe(ctx context.Context, t *playbooks.TaskContext, names []string) (aptState, error) {
	var pkgs []string
	for _, n := range names {
		pkgs = append(pkgs, q(pkgName(n)))
	}
	script := `export LC_ALL=C
command -v apt-get >/dev/null || { echo "apt-get not found" >&2; exit 127; }
t=0
for f in /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists; do
  if [ -e "$f" ]; then t=$(stat -c %Y "$f"); break; fi
done
echo "cache_time=$t"; echo "now=$(date +%s)"
`
	if len(pkgs) > 0 {
		script += "apt-cache policy -- " + strings.Join(pkgs, " ") + " 2>/dev/null\n"
	}
	o, err := runOK(ctx, t, "reading the apt cache", script, nil)
	if err != nil {
		if o.rc == 127 {
			return aptState{}, fmt.Errorf("apt: %w: %s", ErrUnsupported, strings.TrimSpace(o.stderr))
		}
		return aptState{}, err
	}
	return parseAptPolicy(o.stdout), nil
}

// parseAptPolicy reads `apt-cache policy` output ("pkg:", "  Installed: v", "  Candidate: v").
func parseAptPolicy(out string) aptState {
	p := aptState{installed: map[string]string{}, candidate: map[string]string{}, known: map[string]bool{}}
	f := fields(out)
	p.cacheTime, _ = strconv.ParseInt(f["cache_time"], 10, 64)
	p.now, _ = strconv.ParseInt(f["now"], 10, 64)
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasSuffix(l, ":") && !strings.HasPrefix(l, " "):
			cur = strings.TrimSuffix(l, ":")
			p.known[cur] = true
		case cur != "" && strings.HasPrefix(l, "  Installed: "):
			p.installed[cur] = noneEmpty(strings.TrimPrefix(l, "  Installed: "))
		case cur != "" && strings.HasPrefix(l, "  Candidate: "):
			p.candidate[cur] = noneEmpty(strings.TrimPrefix(l, "  Candidate: "))
		}
	}
	return p
}

func noneEmpty(v string) string {
	if v = strings.TrimSpace(v); v == "(none)" {
		return ""
	}
	return v
}

// pkgName strips a version (pkg=1.2) from a package spec.
func pkgName(spec string) string {
	n, _, _ := strings.Cut(spec, "=")
	return n
}

// updateAptCache runs apt-get update; changed when the cache's time moved (always in check mode).
func (s aptSpec) updateAptCache(ctx context.Context, t *playbooks.TaskContext, res *playbooks.Result) error {
	return changeIf(t, "apt-get update", func() (bool, error) {
		o, err := runOK(ctx, t, "apt-get update", "export LC_ALL=C DEBIAN_FRONTEND=noninteractive\napt-get -q update "+s.lockOption()+
			" && for f in /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists; do [ -e \"$f\" ] && { echo \"cache_time=$(stat -c %Y \"$f\")\"; break; }; done", nil)
		if err != nil {
			return false, err
		}
		after, _ := strconv.ParseInt(fields(o.stdout)["cache_time"], 10, 64)
		changed := after != res.Data["cache_update_time"]
		res.Data["cache_updated"], res.Data["cache_update_time"] = changed, after
		return changed, nil
	}, func() { res.Data["cache_updated"] = true })
}

// lockOption is the -o DPkg::Lock::Timeout option of the task.
func (s aptSpec) lockOption() string {
	for _, o := range s.opts {
		if strings.HasPrefix(o, "DPkg::Lock::Timeout=") {
			return "-o " + q(o)
		}
	}
	return ""
}

// changeIf records a change decided by apply (ChangeIf), or in check mode records it
// unconditionally and calls inCheck.
func changeIf(t *playbooks.TaskContext, desc string, apply func() (bool, error), inCheck func()) error {
	if t.Check {
		if inCheck != nil {
			inCheck()
		}
		return t.Change(desc, nil)
	}
	return t.ChangeIf(desc, apply)
}

func quoteAll(l []string) string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = q(s)
	}
	return strings.Join(out, " ")
}

// packages brings the named packages to the wanted state.
func (s aptSpec) packages(ctx context.Context, t *playbooks.TaskContext, p aptState, res *playbooks.Result) error {
	var todo []string
	for _, spec := range s.names {
		name, version, pinned := strings.Cut(spec, "=")
		inst := p.installed[name]
		switch s.state {
		case "absent", "removed":
			if inst != "" {
				todo = append(todo, name)
			}
			continue
		}
		if !p.known[name] {
			res.Failed, res.Msg = true, fmt.Sprintf("No package matching '%s' is available", name)
			return nil
		}
		switch {
		case inst == "":
			todo = append(todo, spec)
		case pinned && !versionMatch(version, inst):
			todo = append(todo, spec)
		case s.state == "latest" && !pinned && p.candidate[name] != "" && p.candidate[name] != inst:
			todo = append(todo, spec)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if s.state == "absent" || s.state == "removed" {
		verb := "remove"
		var extra []string
		if s.purge {
			extra = append(extra, "--purge")
		}
		if s.autoremove {
			extra = append(extra, "--auto-remove")
		}
		return s.aptGet(ctx, t, res, verb, append(extra, todo...), "remove "+strings.Join(todo, ", "))
	}
	var extra []string
	if o, _ := t.Args.Bool("only_upgrade", false); o {
		extra = append(extra, "--only-upgrade")
	}
	return s.aptGet(ctx, t, res, "install", append(extra, todo...), "install "+strings.Join(todo, ", "))
}

// versionMatch is apt's pkg=version with Ansible's trailing-* wildcard.
func versionMatch(want, have string) bool {
	if ok, _ := path.Match(want, have); ok {
		return true
	}
	return want == have
}

// aptGet runs one apt-get command through the gate and records its output.
func (s aptSpec) aptGet(ctx context.Context, t *playbooks.TaskContext, res *playbooks.Result, verb string, args []string, desc string) error {
	script := s.aptCmd(false, verb, args)
	return t.Change(desc, func() error {
		o, err := run(ctx, t, script, nil)
		if err != nil {
			return err
		}
		res.Data["stdout"], res.Data["stderr"], res.Data["rc"] = o.stdout, o.stderr, o.rc
		res.Data["stdout_lines"] = lines(o.stdout)
		if o.rc != 0 {
			res.Failed = true
			res.Msg = fmt.Sprintf("'apt-get %s %s' failed: %s", verb, strings.Join(args, " "), lastLines(strings.TrimSpace(o.stderr), 5))
		}
		return nil
	})
}

// upgradeAll is upgrade=yes/safe/full/dist: changed unless apt-get reports nothing to do
// (in check mode it asks apt-get with --simulate).
func (s aptSpec) upgradeAll(ctx context.Context, t *playbooks.TaskContext, res *playbooks.Result) error {
	verb := map[string]string{"yes": "upgrade --with-new-pkgs", "safe": "upgrade --with-new-pkgs", "full": "dist-upgrade", "dist": "dist-upgrade"}[s.upgrade]
	if s.autoremove {
		verb += " --auto-remove"
	}
	return s.runDecided(ctx, t, res, "apt-get "+verb, s.aptCmd(true, verb, nil), s.aptCmd(false, verb, nil), func(o output) bool {
		return !aptNothingDone(o.stdout)
	})
}

// runDecided runs a command that finds out itself whether there is anything to do: in
// check mode its read-only variant (probe), else the real one through ChangeIf; changed
// says from the output whether something was (or would be) done.
func (s aptSpec) runDecided(ctx context.Context, t *playbooks.TaskContext, res *playbooks.Result, desc, probe, apply string, changed func(output) bool) error {
	do := func(script string) (bool, error) {
		o, err := run(ctx, t, script, nil)
		if err != nil {
			return false, err
		}
		res.Data["stdout"], res.Data["stderr"], res.Data["rc"] = o.stdout, o.stderr, o.rc
		res.Data["stdout_lines"] = lines(o.stdout)
		if o.rc != 0 {
			res.Failed, res.Msg = true, fmt.Sprintf("%s failed: %s", desc, lastLines(strings.TrimSpace(o.stderr), 5))
			return false, nil
		}
		return changed(o), nil
	}
	if t.Check {
		if c, err := do(probe); err != nil || !c {
			return err
		}
		return t.Change(desc, nil)
	}
	return t.ChangeIf(desc, func() (bool, error) { return do(apply) })
}

// installDeb installs a .deb file on the host (a URL is downloaded there first) unless the
// same version is installed (force=yes installs anyway); one command.
func (s aptSpec) installDeb(ctx context.Context, t *playbooks.TaskContext, res *playbooks.Result) error {
	deb := s.deb
	script := "export LC_ALL=C DEBIAN_FRONTEND=noninteractive\nf=" + q(deb) + "\n"
	if strings.Contains(deb, "://") {
		script = "export LC_ALL=C DEBIAN_FRONTEND=noninteractive\nd=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && f=\"$d/pkg.deb\" && " + downloadCmd(deb, "$f") + " || exit 1\n"
	}
	script += `[ -f "$f" ] || { echo "deb file $f not found" >&2; exit 2; }
n=$(dpkg-deb -f "$f" Package) && v=$(dpkg-deb -f "$f" Version) || exit 1
`
	if force, _ := t.Args.Bool("force", false); !force {
		script += "if [ \"$(dpkg-query -W -f='${Status} ${Version}' \"$n\" 2>/dev/null)\" = \"install ok installed $v\" ]; then echo unchanged=1; exit 0; fi\n"
	}
	apply := script + "apt-get -y -q " + quoteAll(s.opts) + " install \"$f\"\n"
	return s.runDecided(ctx, t, res, "install "+deb, script, apply, func(o output) bool { return fields(o.stdout)["unchanged"] != "1" })
}

// downloadCmd downloads url to the file named by the shell word dest with curl, wget or
// python3, whichever the host has.
func downloadCmd(url, dest string) string {
	u := q(url)
	return `{ if command -v curl >/dev/null; then curl -fsSL -o "` + dest + `" ` + u +
		`; elif command -v wget >/dev/null; then wget -q -O "` + dest + `" ` + u +
		`; else python3 -c 'import sys,urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' ` + u + ` "` + dest + `"; fi; }`
}
