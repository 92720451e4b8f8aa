// Package hostmods holds Ansible's everyday host modules (apt, package, service, user,
// lineinfile, stat, get_url, git, cron, ...) and the collection modules third-party
// playbooks use (synchronize, mysql_*, postgresql_*, firewalld, helm, pacman,
// lxd_container, lxd_profile, ...), run
// through a playbooks.Conn: they know nothing
// of orch, its inventory or its agent. Each takes Ansible's argument names and defaults,
// returns Ansible's documented keys, reads the host's state in one command, decides in Go,
// and changes the host through TaskContext.Change (so --check reports without changing)
// in one more command. A second run finds nothing to do and reports changed=false. See
// DESIGN.md.
package hostmods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"orch/internal/shell"
	"orch/playbooks"
)

// Errors of the package; module errors wrap them (or playbooks.ErrArgs for bad arguments).
var (
	// ErrHost means a command on the host failed; the error carries its exit code and stderr.
	ErrHost = errors.New("host command failed")
	// ErrUnsupported means the host lacks what the module needs (no systemd, no apt...).
	ErrUnsupported = errors.New("not supported on this host")
)

// modules are the package's modules by short name.
var modules = map[string]playbooks.Module{
	"package":             playbooks.ModuleFunc(packageModule),
	"apt":                 playbooks.ModuleFunc(aptModule),
	"dnf":                 rpmModule{tool: "dnf"},
	"yum":                 rpmModule{tool: "yum"},
	"service":             serviceModule{},
	"systemd":             serviceModule{systemd: true},
	"systemd_service":     serviceModule{systemd: true},
	"user":                playbooks.ModuleFunc(userModule),
	"group":               playbooks.ModuleFunc(groupModule),
	"lineinfile":          playbooks.ModuleFunc(lineinfileModule),
	"blockinfile":         playbooks.ModuleFunc(blockinfileModule),
	"replace":             playbooks.ModuleFunc(replaceModule),
	"ini_file":            playbooks.ModuleFunc(iniFileModule),
	"stat":                playbooks.ModuleFunc(statModule),
	"slurp":               playbooks.ModuleFunc(slurpModule),
	"fetch":               playbooks.ModuleFunc(fetchModule),
	"get_url":             playbooks.ModuleFunc(getURLModule),
	"unarchive":           playbooks.ModuleFunc(unarchiveModule),
	"git":                 playbooks.ModuleFunc(gitModule),
	"cron":                playbooks.ModuleFunc(cronModule),
	"sysctl":              playbooks.ModuleFunc(sysctlModule),
	"mount":               playbooks.ModuleFunc(mountModule),
	"hostname":            playbooks.ModuleFunc(hostnameModule),
	"script":              scriptModule{},
	"apt_repository":      playbooks.ModuleFunc(aptRepositoryModule),
	"apt_key":             playbooks.ModuleFunc(aptKeyModule),
	"wait_for_connection": playbooks.ModuleFunc(waitForConnectionModule),
	"uri":                 playbooks.ModuleFunc(uriModule),
	"service_facts":       playbooks.ModuleFunc(serviceFactsModule),
	"package_facts":       playbooks.ModuleFunc(packageFactsModule),
	"dpkg_selections":     playbooks.ModuleFunc(dpkgSelectionsModule),
	"find":                playbooks.ModuleFunc(findModule),
	"timezone":            playbooks.ModuleFunc(timezoneModule),
	"getent":              playbooks.ModuleFunc(getentModule),
	"modprobe":            playbooks.ModuleFunc(modprobeModule),
	"locale_gen":          playbooks.ModuleFunc(localeGenModule),
	"pip":                 playbooks.ModuleFunc(pipModule),
	"iptables":            playbooks.ModuleFunc(iptablesModule),
	"reboot":              playbooks.ModuleFunc(rebootModule),
	"yum_repository":      playbooks.ModuleFunc(yumRepositoryModule),
	"selinux":             playbooks.ModuleFunc(selinuxModule),
	"seboolean":           playbooks.ModuleFunc(sebooleanModule),
	"synchronize":         playbooks.ModuleFunc(synchronizeModule),
	"kube":                playbooks.ModuleFunc(kubeModule),
	"helm":                playbooks.ModuleFunc(helmModule),
	"helm_repository":     playbooks.ModuleFunc(helmRepositoryModule),
	"mysql_db":            playbooks.ModuleFunc(mysqlDBModule),
	"mysql_user":          playbooks.ModuleFunc(mysqlUserModule),
	"mysql_replication":   playbooks.ModuleFunc(mysqlReplicationModule),
	"firewalld":           playbooks.ModuleFunc(firewalldModule),
	"pacman":              playbooks.ModuleFunc(pacmanTool.run),
	"pkgng":               playbooks.ModuleFunc(pkgngTool.run),
	"openbsd_pkg":         playbooks.ModuleFunc(openbsdPkgTool.run),
	"zypper":              playbooks.ModuleFunc(zypperTool.run),
	"zypper_repository":   playbooks.ModuleFunc(zypperRepositoryModule),
	"deb822_repository":   playbooks.ModuleFunc(deb822RepositoryModule),
	"rpm_key":             playbooks.ModuleFunc(rpmKeyModule),
	"haproxy":             playbooks.ModuleFunc(haproxyModule),
	"nagios":              playbooks.ModuleFunc(nagiosModule),
	"zfs":                 playbooks.ModuleFunc(zfsModule),
	"mongodb_user":        playbooks.ModuleFunc(mongodbUserModule),
	"jboss":               playbooks.ModuleFunc(jbossModule),
	"rabbitmq_plugin":     playbooks.ModuleFunc(rabbitmqPluginModule),
	"rabbitmq_user":       playbooks.ModuleFunc(rabbitmqUserModule),
	"rabbitmq_vhost":      playbooks.ModuleFunc(rabbitmqVhostModule),
	"postgresql_db":       playbooks.ModuleFunc(postgresqlDBModule),
	"postgresql_user":     playbooks.ModuleFunc(postgresqlUserModule),
	"postgresql_privs":    playbooks.ModuleFunc(postgresqlPrivsModule),
	"lxd_container":       playbooks.ModuleFunc(lxdContainerModule),
	"lxd_profile":         playbooks.ModuleFunc(lxdProfileModule),
}

// collections maps a short name to the collection Ansible ships it in, when that is not
// ansible.builtin (the engine strips ansible.builtin. and ansible.legacy. itself).
var collections = map[string]string{
	"ini_file": "community.general", "sysctl": "ansible.posix", "mount": "ansible.posix",
	"timezone": "community.general", "modprobe": "community.general", "locale_gen": "community.general",
	"selinux": "ansible.posix", "seboolean": "ansible.posix", "synchronize": "ansible.posix", "firewalld": "ansible.posix",
	"helm": "kubernetes.core", "helm_repository": "kubernetes.core",
	"pacman": "community.general", "pkgng": "community.general", "openbsd_pkg": "community.general", "zypper": "community.general", "zypper_repository": "community.general",
	"haproxy": "community.general", "lxd_container": "community.general", "lxd_profile": "community.general",
	"postgresql_db": "community.postgresql", "postgresql_user": "community.postgresql", "postgresql_privs": "community.postgresql",
	"mysql_db": "community.mysql", "mysql_user": "community.mysql", "mysql_replication": "community.mysql",
}

// Registry returns a fresh registry of the package's modules, under their short names,
// their ansible.builtin.X names and, for those living elsewhere in Ansible, their
// collection's name (community.general.ini_file, ansible.posix.mount, ansible.posix.sysctl,
// community.general.timezone/modprobe/locale_gen).
func Registry() playbooks.Registry {
	r := make(playbooks.Registry, 3*len(modules))
	maps.Copy(r, modules)
	for name, m := range modules {
		r["ansible.builtin."+name] = m
		if c := collections[name]; c != "" {
			r[c+"."+name] = m
		}
	}
	return r
}

// q quotes one shell word (the module's one quoting function, internal/shell).
func q(s string) string { return shell.Quote(s) }

// output is what one command printed and how it ended.
type output struct {
	stdout, stderr string
	rc             int
}

// err turns a non-zero exit code into an error naming what was being done.
func (o output) err(what string) error {
	if o.rc == 0 {
		return nil
	}
	msg := strings.TrimSpace(o.stderr)
	if msg == "" {
		msg = strings.TrimSpace(o.stdout)
	}
	return fmt.Errorf("%s: %w (exit code %d): %s", what, ErrHost, o.rc, lastLines(msg, 5))
}

// run runs script on the task's host (through sh, with the task's become) and returns its
// output untrimmed. A transport failure wraps playbooks.ErrUnreachable.
func run(ctx context.Context, t *playbooks.TaskContext, script string, stdin io.Reader) (output, error) {
	conn, err := t.Conn()
	if err != nil {
		return output{}, err
	}
	out, errOut, rc, err := conn.Run(ctx, script, stdin, t.Become)
	if err != nil {
		if ctx.Err() != nil {
			return output{}, ctx.Err()
		}
		return output{}, fmt.Errorf("%w: %w", playbooks.ErrUnreachable, err)
	}
	return output{stdout: string(out), stderr: string(errOut), rc: rc}, nil
}

// runOK is run with a non-zero exit code turned into an error about what.
func runOK(ctx context.Context, t *playbooks.TaskContext, what, script string, stdin io.Reader) (output, error) {
	o, err := run(ctx, t, script, stdin)
	if err != nil {
		return o, err
	}
	return o, o.err(what)
}

// lastLines keeps the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// strArg returns the first of names that is set (an argument and its aliases), else def.
func strArg(a playbooks.Args, def string, names ...string) (string, error) {
	for _, n := range names {
		if a.Has(n) {
			return a.String(n, def)
		}
	}
	return def, nil
}

// listArg returns a list argument under the first of names that is set; a string is split
// at commas, as Ansible's list type does.
func listArg(a playbooks.Args, names ...string) ([]string, error) {
	for _, n := range names {
		if !a.Has(n) {
			continue
		}
		if s, ok := a[n].(string); ok {
			return splitComma(s), nil
		}
		if l, ok := a[n].([]any); ok {
			out := make([]string, 0, len(l))
			for _, e := range l {
				out = append(out, strings.TrimSpace(fmt.Sprint(e)))
			}
			return out, nil
		}
		return a.StringList(n)
	}
	return nil, nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// choice checks that v is one of allowed, naming the argument.
func choice(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%w %q: %q is not one of %s", playbooks.ErrArgs, name, v, strings.Join(allowed, ", "))
}

// fact returns a gathered fact (ansible_X or ansible_facts.X) as a string, "" if unknown.
func fact(t *playbooks.TaskContext, name string) string {
	if v, ok := t.Vars().Get("ansible_" + name); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	if v, ok := t.Vars().Get("ansible_facts"); ok {
		if m, ok := v.(map[string]any); ok {
			if s, ok := m[name].(string); ok {
				return s
			}
		}
	}
	return ""
}

// fields splits a probe's key=value lines into a map (later keys win).
func fields(s string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out
}

// lines splits command output into the stdout_lines Ansible registers.
func lines(s string) []any {
	s = strings.TrimSuffix(s, "\n")
	out := []any{}
	if s == "" {
		return out
	}
	for _, l := range strings.Split(s, "\n") {
		out = append(out, l)
	}
	return out
}

// commandData is the rc/stdout/stderr part of a result.
func commandData(o output) map[string]any {
	return map[string]any{"rc": o.rc, "stdout": o.stdout, "stderr": o.stderr,
		"stdout_lines": lines(o.stdout), "stderr_lines": lines(o.stderr)}
}
