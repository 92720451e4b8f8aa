package hostmods

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"orch/playbooks"
)

// serviceFactsScript lists services in one command: sysv's `service --status-all`, then,
// when systemd is PID 1, its units and unit files (C locale, as Ansible runs them).
const serviceFactsScript = `LC_ALL=C; export LC_ALL
if command -v service >/dev/null 2>&1 && [ -d /etc/init.d ]; then echo '#sysv'; service --status-all 2>/dev/null; fi
if grep -q systemd /proc/1/comm 2>/dev/null && command -v systemctl >/dev/null 2>&1; then
  echo '#units'; systemctl list-units --no-pager --type service --all
  echo '#files'; systemctl list-unit-files --no-pager --type service --all
fi
`

// systemdBadStates are list-units' LOAD/ACTIVE values Ansible reports as the status.
var systemdBadStates = map[string]bool{"not-found": true, "masked": true, "failed": true}

// service_facts sets ansible_facts.services: every sysv and systemd service with its name,
// state (running/stopped/...), status (enabled/disabled/static/...) and source, read in one
// command. A systemd unit file with no loaded unit gets state "inactive" without the
// per-unit `systemctl show` Ansible runs (systemd reports an unloaded unit as inactive).
func serviceFactsModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("service_facts", t.Args); err != nil {
		return playbooks.Result{}, err
	}
	o, err := runOK(ctx, t, "listing services", serviceFactsScript, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	services := parseServices(o.stdout)
	if len(services) == 0 {
		return playbooks.Result{Skipped: true, Msg: "Failed to find any services. This can be due to privileges or some other configuration issue."}, nil
	}
	return playbooks.Result{Data: map[string]any{"ansible_facts": map[string]any{"services": services}}}, nil
}

// parseServices reads serviceFactsScript's sections as Ansible's ServiceScanService and
// SystemctlScanService do.
func parseServices(out string) map[string]any {
	services := map[string]any{}
	section := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "#") {
			section = l
			continue
		}
		switch section {
		case "#sysv":
			parseSysvLine(l, services)
		case "#units":
			parseUnitLine(l, services)
		case "#files":
			parseUnitFileLine(l, services)
		}
	}
	return services
}

// parseSysvLine reads " [ + ]  cron".
func parseSysvLine(l string, services map[string]any) {
	s := strings.TrimSpace(l)
	if len(s) < 6 || !strings.HasPrefix(s, "[ ") || s[3:5] != " ]" || (s[2] != '+' && s[2] != '-') {
		return
	}
	name := strings.TrimSpace(s[5:])
	if name == "" {
		return
	}
	state := "stopped"
	if s[2] == '+' {
		state = "running"
	}
	services[name] = map[string]any{"name": name, "state": state, "source": "sysv"}
}

// parseUnitLine reads a list-units line: [●] UNIT LOAD ACTIVE SUB DESCRIPTION.
func parseUnitLine(l string, services map[string]any) {
	if !strings.Contains(l, ".service") {
		return
	}
	f := strings.Fields(l)
	status := ""
	for i, x := range f {
		if systemdBadStates[x] {
			status = x
			if i > 0 && !strings.Contains(f[0], ".service") {
				f = f[1:]
			}
			break
		}
	}
	if len(f) < 4 {
		return
	}
	if status == "" {
		status = f[2]
	}
	state := "stopped"
	if f[3] == "running" {
		state = "running"
	}
	services[f[0]] = map[string]any{"name": f[0], "state": state, "status": status, "source": "systemd"}
}

// parseUnitFileLine reads a list-unit-files line: UNIT STATE [PRESET].
func parseUnitFileLine(l string, services map[string]any) {
	f := strings.Fields(l)
	if !strings.Contains(l, ".service") || len(f) < 2 {
		return
	}
	s, ok := services[f[0]].(map[string]any)
	if !ok {
		services[f[0]] = map[string]any{"name": f[0], "state": "inactive", "status": f[1], "source": "systemd"}
		return
	}
	if st, _ := s["status"].(string); !systemdBadStates[st] {
		s["status"] = f[1]
	}
}

// packageManagers are package_facts' managers this module reads, with the one command
// listing each one's installed packages (tab-separated fields).
var packageManagers = []struct{ name, tool, list string }{
	{"apt", "dpkg-query", `dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${Section}\n'`},
	{"rpm", "rpm", `rpm -qa --qf '%{NAME}\t%{VERSION}\t%{RELEASE}\t%{EPOCH}\t%{ARCH}\n'`},
}

// package_facts sets ansible_facts.packages: name -> list of {name, version, arch, source,
// ...} from dpkg (source apt) and rpm, in one command; manager auto/apt/rpm (dpkg is apt's
// database), strategy first/all.
func packageFactsModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("package_facts", a, "manager", "strategy"); err != nil {
		return playbooks.Result{}, err
	}
	managers, err := listArg(a, "manager")
	if err != nil {
		return playbooks.Result{}, err
	}
	if len(managers) == 0 {
		managers = []string{"auto"}
	}
	strategy, _ := a.String("strategy", "first")
	if err := choice("strategy", strategy, "first", "all"); err != nil {
		return playbooks.Result{}, err
	}
	script := packageFactsScript(managers, strategy == "first")
	o, err := runOK(ctx, t, "listing packages", script, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	packages, found := parsePackages(o.stdout)
	if len(found) == 0 {
		return playbooks.Result{Failed: true, Msg: "Could not detect a supported package manager from the following list: " +
			fmt.Sprint(managers) + ", or the required Python library is not installed. Check warnings for details."}, nil
	}
	return playbooks.Result{Data: map[string]any{"ansible_facts": map[string]any{"packages": packages}}}, nil
}

// packageFactsScript lists the managers asked for (auto: all known), stopping after the
// first found when first.
func packageFactsScript(managers []string, first bool) string {
	var b strings.Builder
	auto := false
	for _, m := range managers {
		auto = auto || m == "auto"
	}
	for _, pm := range packageManagers {
		want := auto
		for _, m := range managers {
			want = want || m == pm.name || pm.name == "apt" && m == "dpkg"
		}
		if !want {
			continue
		}
		fmt.Fprintf(&b, "if command -v %s >/dev/null 2>&1; then echo '#%s'; %s", pm.tool, pm.name, pm.list)
		if first {
			b.WriteString("; exit 0")
		}
		b.WriteString("; fi\n")
	}
	b.WriteString("exit 0\n")
	return b.String()
}

// parsePackages reads the listings: apt's only its installed packages (status ii/hi...).
func parsePackages(out string) (map[string]any, []string) {
	packages := map[string]any{}
	var found []string
	mgr := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "#") {
			mgr = l[1:]
			found = append(found, mgr)
			continue
		}
		f := strings.Split(l, "\t")
		var p map[string]any
		switch {
		case mgr == "apt" && len(f) == 5 && len(f[0]) >= 2 && f[0][1] == 'i':
			p = map[string]any{"name": f[1], "version": f[2], "arch": f[3], "category": f[4], "source": "apt"}
		case mgr == "rpm" && len(f) == 5:
			var epoch any
			if n, err := strconv.Atoi(f[3]); err == nil {
				epoch = n
			}
			p = map[string]any{"name": f[0], "version": f[1], "release": f[2], "epoch": epoch, "arch": f[4], "source": "rpm"}
		default:
			continue
		}
		name := p["name"].(string)
		l, _ := packages[name].([]any)
		packages[name] = append(l, p)
	}
	return packages, found
}

// dpkg_selections sets a package's dpkg selection (install, hold, deinstall, purge): one
// `dpkg --get-selections`, and `dpkg --set-selections` when it differs; before/after as
// Ansible returns them.
func dpkgSelectionsModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("dpkg_selections", a, "name", "selection"); err != nil {
		return playbooks.Result{}, err
	}
	name, err := a.Required("name")
	if err != nil {
		return playbooks.Result{}, err
	}
	sel, err := a.Required("selection")
	if err != nil {
		return playbooks.Result{}, err
	}
	if err := choice("selection", sel, "install", "hold", "deinstall", "purge"); err != nil {
		return playbooks.Result{}, err
	}
	o, err := runOK(ctx, t, "dpkg --get-selections "+name, "command -v dpkg >/dev/null || { echo 'dpkg not found' >&2; exit 127; }\n"+
		"dpkg --get-selections "+q(name)+" 2>/dev/null; exit 0", nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	current := "not present"
	if f := strings.Fields(o.stdout); len(f) >= 2 {
		current = f[1]
	}
	data := map[string]any{"before": current, "after": sel}
	if current == sel {
		return playbooks.Result{Data: data}, nil
	}
	err = t.Change("dpkg selection of "+name+": "+current+" -> "+sel, func() error {
		_, err := runOK(ctx, t, "dpkg --set-selections "+name, "echo "+q(name+" "+sel)+" | dpkg --set-selections", nil)
		return err
	})
	return playbooks.Result{Data: data}, err
}
