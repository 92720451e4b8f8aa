package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// sysctl (ansible.posix) sets a kernel parameter in sysctl_file and reloads that file,
// with ansible.posix's rules: the file is rewritten with every key=value line normalized
// (first occurrence of each key kept), it is written when the key's value there (its last
// occurrence) differs, and with reload=yes a running value that differs is a change too
// (the file is reloaded); sysctl_set=yes sets the running value with sysctl -w. The file
// and the running value are read in one command.
func sysctlModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("sysctl", a, "name", "key", "value", "val", "state", "sysctl_file", "reload",
		"sysctl_set", "ignoreerrors"); err != nil {
		return playbooks.Result{}, err
	}
	name, _ := strArg(a, "", "name", "key")
	if name = strings.TrimSpace(name); name == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	}
	value, _ := strArg(a, "", "value", "val")
	value = sysctlValue(value)
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return playbooks.Result{}, err
	}
	if state == "present" && value == "" {
		return playbooks.Result{}, fmt.Errorf("%w \"value\": required with state=present", playbooks.ErrArgs)
	}
	file, _ := a.String("sysctl_file", "/etc/sysctl.conf")
	reload, _ := a.Bool("reload", true)
	set, _ := a.Bool("sysctl_set", false)
	ignore, _ := a.Bool("ignoreerrors", false)
	f, cur, err := readTextFileWith(ctx, t, file, "echo \"proc=$(sysctl -e -n -- "+q(name)+" 2>/dev/null | tr '\\n\\t' '  ')\"")
	if err != nil {
		return playbooks.Result{}, err
	}
	proc := normalizeSysctl(cur["proc"])
	hasProc := proc != ""
	fileValue, inFile := sysctlFileValue(f.content, name)
	content := sysctlFix(f.content, name, value, state == "present")
	write, differs := false, false
	switch {
	case !inFile:
		write = state == "present"
	case state == "absent":
		write = true
	case fileValue != value:
		write = true
	case reload:
		differs = !hasProc || proc != value
	}
	setToken := set && state == "present" && hasProc && proc != value
	if set && state == "present" && !hasProc {
		differs = true
	}
	res := playbooks.Result{Data: map[string]any{}}
	if write {
		if err := (fileEdit{path: file, mkdirs: true}).apply(ctx, t, f, content, &res); err != nil {
			return res, err
		}
	}
	if differs && !write && !setToken {
		if err := t.Change(fmt.Sprintf("%s is %q, not %q", name, proc, value), nil); err != nil {
			return res, err
		}
	}
	if setToken {
		err := t.Change(fmt.Sprintf("sysctl -w %s=%s", name, value), func() error {
			_, err := runOK(ctx, t, "setting "+name, "sysctl -w "+q(name+"="+value), nil)
			return err
		})
		if err != nil {
			return res, err
		}
	}
	if (write || differs || setToken) && reload && !t.Check {
		return res, reloadSysctl(ctx, t, file, ignore, &res)
	}
	return res, nil
}

// reloadSysctl loads file (sysctl -p), failing the task on errors unless ignoreerrors.
func reloadSysctl(ctx context.Context, t *playbooks.TaskContext, file string, ignore bool, res *playbooks.Result) error {
	cmd := "sysctl -p " + q(file)
	if ignore {
		cmd = "sysctl -e -p " + q(file)
	}
	o, err := run(ctx, t, cmd, nil)
	if err != nil {
		return err
	}
	if o.rc != 0 && !ignore {
		res.Failed, res.Msg = true, "Failed to reload sysctl: "+strings.TrimSpace(o.stdout+o.stderr)
	}
	return nil
}

// sysctlValue is ansible.posix's _parse_value: booleans as 1/0, else the trimmed string.
func sysctlValue(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "on", "true", "y", "t":
		return "1"
	case "no", "off", "false", "n", "f":
		return "0"
	}
	return strings.TrimSpace(v)
}

// normalizeSysctl is the value as sysctl prints it: fields separated by one space (tabs
// in multi-value keys like net.ipv4.ip_local_port_range).
func normalizeSysctl(v string) string { return strings.Join(strings.Fields(v), " ") }

// sysctlLine splits a key=value line; ok is false for blanks, comments and other lines.
func sysctlLine(l string) (k, v string, ok bool) {
	s := strings.TrimSpace(l)
	if s == "" || strings.HasPrefix(s, "#") || strings.HasPrefix(s, ";") {
		return "", "", false
	}
	k, v, ok = strings.Cut(s, "=")
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}

// sysctlFileValue is name's value in the file (its last occurrence).
func sysctlFileValue(content, name string) (string, bool) {
	v, found := "", false
	for _, l := range splitLines(content) {
		if k, val, ok := sysctlLine(l); ok && k == name {
			v, found = val, true
		}
	}
	return v, found
}

// sysctlFix is ansible.posix's fix_lines: every key=value line becomes k=v, only the first
// line of each key stays, name gets value (or goes with present=false), and a name not in
// the file is appended.
func sysctlFix(content, name, value string, present bool) string {
	var out []string
	seen := map[string]bool{}
	for _, l := range splitLines(content) {
		k, v, ok := sysctlLine(l)
		if !ok {
			out = append(out, l)
			continue
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		switch {
		case k != name:
			out = append(out, k+"="+v+"\n")
		case present:
			out = append(out, k+"="+value+"\n")
		}
	}
	if present && !seen[name] {
		out = append(out, name+"="+value+"\n")
	}
	return strings.Join(out, "")
}
