package hostmods

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"orch/playbooks"
)

// pipStates are pip's states and the pip command of each.
var pipStates = map[string]string{"present": "install", "absent": "uninstall -y", "latest": "install -U",
	"forcereinstall": "install -U --force-reinstall"}

// pipReq splits a requirement into name, operator and version ("foo==1.0", "foo>=2", "foo").
var pipReq = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(?:(==|>=|<=|~=|!=|>|<)\s*([^\s,;]+))?\s*$`)

// pipArgs are pip's arguments, validated.
type pipArgs struct {
	names                            []string
	version, requirements, state     string
	venv, venvCmd, venvPython, chdir string
	extra, executable                string
	siteProvided, editable, breakSys bool
}

// pip installs Python packages with pip, in a virtualenv (created first) when asked: the
// virtualenv's existence and `pip list --format=freeze` read in one command; the pip
// command runs when a package is missing (present), installed (absent), or for latest,
// forcereinstall and requirements files, whose changed is pip's "Successfully installed"
// as in Ansible.
func pipModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	p, err := parsePipArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	pip := p.pipCommand()
	probe := "cd " + q(p.chdirOr("/")) + " || exit 1\n"
	if p.venv != "" {
		probe += "[ -x " + q(p.venv+"/bin/pip") + " ] || { echo '#novenv'; exit 0; }\n"
	}
	probe += "LC_ALL=C " + pip + " list --format=freeze 2>/dev/null || " + pip + " freeze\n"
	o, err := runOK(ctx, t, "listing Python packages", probe, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	noVenv := strings.Contains(o.stdout, "#novenv")
	installed := pipInstalled(o.stdout)
	cmd := pip + " " + pipStates[p.state]
	if p.extra != "" {
		cmd += " " + p.extra
	}
	for _, n := range p.pkgs() {
		if p.editable {
			cmd += " -e"
		}
		cmd += " " + q(n)
	}
	if p.requirements != "" {
		cmd += " -r " + q(p.requirements)
	}
	data := map[string]any{"cmd": cmd, "name": p.names, "version": p.version, "requirements": p.requirements,
		"virtualenv": p.venv, "state": p.state}
	if !noVenv && p.converged(installed) {
		return playbooks.Result{Data: data}, nil
	}
	script := "cd " + q(p.chdirOr("/")) + " || exit 1\n"
	if noVenv {
		script += p.venvScript() + " || exit 1\necho '#venv-created'\n"
	}
	script += cmd
	if t.Check {
		return playbooks.Result{Data: data}, t.Change(cmd, nil)
	}
	var out output
	err = t.ChangeIf(cmd, func() (bool, error) {
		out, err = runOK(ctx, t, cmd, script, nil)
		if err != nil {
			return false, err
		}
		data["stdout"], data["stderr"] = out.stdout, out.stderr
		return noVenv || strings.Contains(out.stdout, "Successfully installed") || strings.Contains(out.stdout, "Successfully uninstalled"), nil
	})
	return playbooks.Result{Data: data}, err
}

func parsePipArgs(a playbooks.Args) (pipArgs, error) {
	if err := playbooks.AllowArgs("pip", a, "name", "version", "requirements", "virtualenv", "virtualenv_site_packages",
		"virtualenv_command", "virtualenv_python", "state", "extra_args", "editable", "chdir", "executable", "umask",
		"break_system_packages"); err != nil {
		return pipArgs{}, err
	}
	var p pipArgs
	var err error
	if p.names, err = listArg(a, "name"); err != nil {
		return p, err
	}
	p.version, _ = a.String("version", "")
	p.requirements, _ = a.String("requirements", "")
	if len(p.names) == 0 && p.requirements == "" {
		return p, fmt.Errorf("%w: one of the following is required: name, requirements", playbooks.ErrArgs)
	}
	p.state, _ = a.String("state", "present")
	if _, ok := pipStates[p.state]; !ok {
		return p, choice("state", p.state, "present", "absent", "latest", "forcereinstall")
	}
	if p.state == "latest" && p.version != "" {
		return p, fmt.Errorf("%w: version is incompatible with state=latest", playbooks.ErrArgs)
	}
	if p.version != "" && len(p.names) > 1 {
		return p, fmt.Errorf("%w: version argument is ambiguous when installing multiple package distributions", playbooks.ErrArgs)
	}
	p.venv, _ = a.String("virtualenv", "")
	p.venvCmd, _ = a.String("virtualenv_command", "virtualenv")
	p.venvPython, _ = a.String("virtualenv_python", "")
	p.chdir, _ = a.String("chdir", "")
	p.extra, _ = a.String("extra_args", "")
	p.executable, _ = a.String("executable", "")
	if p.venv != "" && p.executable != "" {
		return p, fmt.Errorf("%w: parameters are mutually exclusive: executable|virtualenv", playbooks.ErrArgs)
	}
	if p.siteProvided, err = a.Bool("virtualenv_site_packages", false); err != nil {
		return p, err
	}
	if p.editable, err = a.Bool("editable", false); err != nil {
		return p, err
	}
	if p.breakSys, err = a.Bool("break_system_packages", false); err != nil {
		return p, err
	}
	if p.breakSys {
		p.extra = strings.TrimSpace(p.extra + " --break-system-packages")
	}
	return p, nil
}

func (p pipArgs) chdirOr(def string) string {
	if p.chdir != "" {
		return p.chdir
	}
	if p.venv != "" {
		return "/"
	}
	return def
}

// pipCommand is the pip to run: the virtualenv's, executable, or pip3/pip on PATH.
func (p pipArgs) pipCommand() string {
	switch {
	case p.venv != "":
		return q(p.venv + "/bin/pip")
	case p.executable != "":
		return q(p.executable)
	}
	return "$(command -v pip3 || command -v pip || echo pip3)"
}

// venvScript creates the virtualenv as Ansible does: virtualenv_command, -p python
// (not for python -m venv), --system-site-packages.
func (p pipArgs) venvScript() string {
	cmd := p.venvCmd
	if p.siteProvided {
		cmd += " --system-site-packages"
	}
	if p.venvPython != "" && !strings.Contains(cmd, "-m venv") {
		cmd += " -p" + q(p.venvPython)
	}
	return cmd + " " + q(p.venv)
}

// pkgs are the names with version appended (name==version) as pip takes them.
func (p pipArgs) pkgs() []string {
	if p.version == "" {
		return p.names
	}
	return []string{p.names[0] + "==" + p.version}
}

// pipKey normalises a distribution name (PEP 503: case and -_. runs are the same).
func pipKey(n string) string {
	return strings.ToLower(regexp.MustCompile(`[-_.]+`).ReplaceAllString(n, "-"))
}

// pipInstalled reads `pip list --format=freeze`: name -> version.
func pipInstalled(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if n, v, ok := strings.Cut(strings.TrimSpace(l), "=="); ok {
			m[pipKey(n)] = v
		}
	}
	return m
}

// converged reports whether present/absent is already true for every package; latest,
// forcereinstall and requirements always run pip, as in Ansible.
func (p pipArgs) converged(installed map[string]string) bool {
	if p.requirements != "" || p.state == "latest" || p.state == "forcereinstall" || p.editable {
		return false
	}
	for _, n := range p.pkgs() {
		m := pipReq.FindStringSubmatch(n)
		if m == nil {
			return false // a URL, a path, a VCS spec: pip decides
		}
		v, ok := installed[pipKey(m[1])]
		present := ok && (m[3] == "" || m[3] == "==" && v == m[4])
		if m[3] != "" && m[3] != "==" && ok {
			return false // a range: leave it to pip
		}
		if present != (p.state == "present") {
			return false
		}
	}
	return true
}
