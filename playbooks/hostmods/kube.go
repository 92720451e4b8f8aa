package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// kubeArgNames are the arguments of kubespray's kube module (its library/kube.py).
var kubeArgNames = []string{"name", "filename", "files", "file", "filenames", "namespace", "resource", "label",
	"server", "kubeconfig", "kubectl", "force", "wait", "all", "log_level", "state", "recursive"}

// kubeSpec is a parsed kube task: kubectl's base command and what to act on.
type kubeSpec struct {
	base                         []string // kubectl and its global flags
	name, resource, label, state string
	filenames                    []string
	force, wait, all, recursive  bool
}

// kubeModule is kubespray's own `kube` module (library/kube.py), ported: it drives kubectl on
// the host. state present/latest/reloaded apply the files (`kubectl apply --force`),
// absent deletes them or the named resource when `kubectl get` finds it (or always with
// force), stopped runs `kubectl stop`, exists reports whether `kubectl get` finds it. Like
// the Python module it always reports changed=false and does not run in check mode.
func kubeModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("kube", t.Args, kubeArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	k, err := parseKube(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	if t.Check {
		return playbooks.Result{Skipped: true, Msg: "remote module (kube) does not support check mode"}, nil
	}
	exec := func(argv []string) (output, error) {
		return run(ctx, t, "command -v "+q(argv[0])+" >/dev/null 2>&1 || { echo 'Failed to find required executable \""+argv[0]+"\" in paths' >&2; exit 127; }\n"+shellJoin(argv), nil)
	}
	exists := func() (bool, error) {
		argv, err := k.getCmd()
		if err != nil {
			return false, err
		}
		o, err := exec(argv)
		if err != nil || o.rc == 127 {
			return false, orErr(err, o.err("kubectl"))
		}
		return o.rc == 0 && strings.TrimSpace(o.stdout) != "", nil
	}
	var argv []string
	switch k.state {
	case "exists":
		ok, err := exists()
		if err != nil {
			return playbooks.Result{Failed: true, Msg: err.Error()}, nil
		}
		return playbooks.Result{Msg: fmt.Sprint(pyBool(ok))}, nil
	case "present", "latest", "reloaded":
		argv, err = k.applyCmd()
	case "absent", "stopped":
		if !k.force {
			ok, err := exists()
			if err != nil {
				return playbooks.Result{Failed: true, Msg: err.Error()}, nil
			}
			if !ok {
				return playbooks.Result{Msg: "success: "}, nil
			}
		}
		argv, err = k.deleteCmd(map[string]string{"absent": "delete", "stopped": "stop"}[k.state])
	}
	if err != nil {
		return playbooks.Result{Failed: true, Msg: err.Error()}, nil
	}
	o, err := exec(argv)
	if err != nil {
		return playbooks.Result{}, err
	}
	if o.rc != 0 {
		return playbooks.Result{Failed: true, Msg: fmt.Sprintf("error running kubectl (%s) command (rc=%d), out='%s', err='%s'",
			strings.Join(argv, " "), o.rc, o.stdout, o.stderr)}, nil
	}
	return playbooks.Result{Msg: "success: " + strings.Join(strings.Split(strings.TrimRight(o.stdout, "\n"), "\n"), " ")}, nil
}

// parseKube reads a kube task's arguments.
func parseKube(a playbooks.Args) (kubeSpec, error) {
	var k kubeSpec
	var err error
	kubectl, _ := a.String("kubectl", "kubectl")
	k.base = []string{kubectl}
	for _, f := range [][2]string{{"server", "--server="}, {"kubeconfig", "--kubeconfig="}, {"namespace", "--namespace="}} {
		if v, _ := a.String(f[0], ""); v != "" {
			k.base = append(k.base, f[1]+v)
		}
	}
	if lvl, err := a.Int("log_level", 0); err != nil {
		return k, err
	} else if lvl != 0 {
		k.base = append(k.base, fmt.Sprintf("--v=%d", lvl))
	}
	k.name, _ = a.String("name", "")
	k.resource, _ = a.String("resource", "")
	k.label, _ = a.String("label", "")
	if k.state, err = a.String("state", "present"); err != nil {
		return k, err
	}
	if err := choice("state", k.state, "present", "absent", "latest", "reloaded", "stopped", "exists"); err != nil {
		return k, err
	}
	files, err := listArg(a, "filename", "files", "file", "filenames")
	if err != nil {
		return k, err
	}
	for _, f := range files {
		k.filenames = append(k.filenames, strings.TrimSpace(f))
	}
	for name, p := range map[string]*bool{"force": &k.force, "wait": &k.wait, "all": &k.all, "recursive": &k.recursive} {
		if *p, err = a.Bool(name, false); err != nil {
			return k, err
		}
	}
	return k, nil
}

func (k kubeSpec) cmd(args ...string) []string { return append(append([]string{}, k.base...), args...) }

// applyCmd is kube.py's create/replace: apply --force of the files.
func (k kubeSpec) applyCmd() ([]string, error) {
	if len(k.filenames) == 0 {
		return nil, fmt.Errorf("filename required to create")
	}
	c := k.cmd("apply", "--force")
	if k.wait {
		c = append(c, "--wait")
	}
	if k.recursive {
		c = append(c, "--recursive=True")
	}
	return append(c, "--filename="+strings.Join(k.filenames, ",")), nil
}

// selectCmd appends what kube.py selects by: the files, else resource [name] [--selector].
func (k kubeSpec) selectCmd(c []string, verb, allFlag string) ([]string, error) {
	if len(k.filenames) > 0 {
		c = append(c, "--filename="+strings.Join(k.filenames, ","))
		if k.recursive {
			c = append(c, "--recursive=True")
		}
		return c, nil
	}
	if k.resource == "" {
		return nil, fmt.Errorf("resource required %s", verb)
	}
	c = append(c, k.resource)
	if k.name != "" {
		c = append(c, k.name)
	}
	if k.label != "" {
		c = append(c, "--selector="+k.label)
	}
	if k.all {
		c = append(c, allFlag)
	}
	return c, nil
}

// getCmd is kube.py's exists(): kubectl get ... --no-headers.
func (k kubeSpec) getCmd() ([]string, error) {
	c, err := k.selectCmd(k.cmd("get"), "without filename", "--all-namespaces")
	if err != nil {
		return nil, err
	}
	return append(c, "--no-headers"), nil
}

// deleteCmd is kube.py's delete() (verb delete) and stop() (verb stop).
func (k kubeSpec) deleteCmd(verb string) ([]string, error) {
	c, err := k.selectCmd(k.cmd(verb), "to "+verb+" without filename", "--all")
	if err != nil {
		return nil, err
	}
	if len(k.filenames) == 0 && k.force {
		c = append(c, "--ignore-not-found")
	}
	if len(k.filenames) == 0 && k.recursive && verb == "delete" {
		c = append(c, "--recursive=True")
	}
	return c, nil
}

// shellJoin quotes argv into one shell command line.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = q(a)
	}
	return strings.Join(out, " ")
}

// pyBool spells a boolean as Python prints it.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// orErr returns the first non-nil error.
func orErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
