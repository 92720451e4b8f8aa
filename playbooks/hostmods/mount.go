package hostmods

import (
	"context"
	"fmt"
	"strings"

	"orch/playbooks"
)

// mountSpec are the mount module's arguments.
type mountSpec struct {
	path, src, fstype, opts, dump, passno, fstab, state string
	boot                                                bool
}

// mount (ansible.posix) manages an fstab entry and whether it is mounted: fstab and
// /proc/self/mounts are read in one command; mounting uses the entry's own values (so a
// non-default fstab works too).
func mountModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("mount", a, "path", "name", "src", "fstype", "opts", "dump", "passno", "state",
		"fstab", "boot", "backup"); err != nil {
		return playbooks.Result{}, err
	}
	m, err := mountArgs(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	f, cur, err := readTextFileWith(ctx, t, m.fstab, "awk -v p="+q(escapeFstab(m.path))+" '$2 == p {print \"mounted=1\"}' /proc/self/mounts")
	if err != nil {
		return playbooks.Result{}, err
	}
	mounted := cur["mounted"] == "1"
	res := playbooks.Result{Data: map[string]any{"name": m.path, "src": m.src, "fstype": m.fstype, "opts": m.opts,
		"dump": m.dump, "passno": m.passno, "fstab": m.fstab, "boot": m.boot}}
	content := f.content
	switch m.state {
	case "present", "mounted":
		content = m.setEntry(f.content)
	case "absent", "absent_from_fstab":
		content = m.dropEntry(f.content)
	}
	fstabChanged := content != f.content
	if fstabChanged {
		edit, err := editArgs(playbooks.Args{"backup": a["backup"]}, m.fstab)
		if err != nil {
			return res, err
		}
		if err := edit.apply(ctx, t, f, content, &res); err != nil {
			return res, err
		}
	}
	cmd := m.mountCommand(mounted, fstabChanged)
	if cmd == "" {
		return res, nil
	}
	return res, t.Change(fmt.Sprintf("%s %s", m.state, m.path), func() error {
		_, err := runOK(ctx, t, m.state+" "+m.path, cmd, nil)
		return err
	})
}

func mountArgs(a playbooks.Args) (mountSpec, error) {
	m := mountSpec{}
	var err error
	if m.path, _ = strArg(a, "", "path", "name"); m.path == "" {
		return m, fmt.Errorf("%w \"path\": required", playbooks.ErrArgs)
	}
	if len(m.path) > 1 {
		m.path = strings.TrimRight(m.path, "/")
	}
	m.src, _ = a.String("src", "")
	m.fstype, _ = a.String("fstype", "")
	m.opts, _ = a.String("opts", "defaults")
	m.dump, _ = a.String("dump", "0")
	m.passno, _ = a.String("passno", "0")
	m.fstab, _ = a.String("fstab", "/etc/fstab")
	if m.state, err = a.Required("state"); err != nil {
		return m, err
	}
	if err := choice("state", m.state, "mounted", "unmounted", "present", "absent", "remounted", "ephemeral", "absent_from_fstab"); err != nil {
		return m, err
	}
	if m.boot, err = a.Bool("boot", true); err != nil {
		return m, err
	}
	if !m.boot && !strings.Contains(","+m.opts+",", ",noauto,") {
		m.opts = strings.TrimPrefix(m.opts+",noauto", "defaults,")
	}
	if (m.state == "present" || m.state == "mounted" || m.state == "ephemeral") && (m.src == "" || m.fstype == "") {
		return m, fmt.Errorf("%w: state=%s needs src and fstype", playbooks.ErrArgs, m.state)
	}
	return m, nil
}

// escape is fstab's octal escaping of blanks.
func escapeFstab(s string) string {
	return strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`).Replace(s)
}

func (m mountSpec) entry() string {
	return strings.Join([]string{escapeFstab(m.src), escapeFstab(m.path), m.fstype, m.opts, m.dump, m.passno}, " ") + "\n"
}

// setEntry replaces the line mounting path (keeping one that already says the same) or
// appends one.
func (m mountSpec) setEntry(content string) string {
	lines := splitLines(content)
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || f[1] != escapeFstab(m.path) {
			continue
		}
		want := strings.Fields(m.entry())
		if len(f) == 4 {
			f = append(f, "0", "0")
		}
		if strings.Join(f, " ") == strings.Join(want, " ") {
			return content
		}
		lines[i] = m.entry()
		return strings.Join(lines, "")
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	return content + m.entry()
}

func (m mountSpec) dropEntry(content string) string {
	var keep []string
	for _, l := range splitLines(content) {
		f := strings.Fields(l)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") && f[1] == escapeFstab(m.path) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "")
}

// mountCommand is what brings the mount itself to state, "" if nothing.
func (m mountSpec) mountCommand(mounted, fstabChanged bool) string {
	p := q(m.path)
	mount := "mkdir -p -- " + p + " && mount -t " + q(m.fstype) + " -o " + q(m.opts) + " -- " + q(m.src) + " " + p
	switch m.state {
	case "mounted", "ephemeral":
		if !mounted {
			return mount
		}
		if fstabChanged {
			return "umount -- " + p + " && " + mount
		}
	case "unmounted", "absent":
		if mounted {
			return "umount -- " + p
		}
	case "remounted":
		return "mount -o remount -- " + p
	}
	return ""
}
