package hostmods

import (
	"context"
	"fmt"
	"path"
	"strings"

	"orch/playbooks"
)

// cronSpec are the cron module's arguments.
type cronSpec struct {
	name, job, user, file, special string
	times                          [5]string
	present, disabled, env         bool
	after, before                  string
}

// cron manages a user's crontab (crontab -l/-) or a file in /etc/cron.d: jobs named by an
// "#Ansible: NAME" comment line above them, and environment variables (env=yes).
func cronModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("cron", a, "name", "job", "value", "user", "state", "cron_file", "backup", "minute",
		"hour", "day", "dom", "month", "weekday", "dow", "special_time", "disabled", "env", "insertafter", "insertbefore", "reboot"); err != nil {
		return playbooks.Result{}, err
	}
	c, err := cronArgs(a)
	if err != nil {
		return playbooks.Result{}, err
	}
	read := "crontab -l" + c.userOpt() + " 2>/dev/null || true"
	if c.file != "" {
		read = "cat -- " + q(c.file) + " 2>/dev/null || true"
	}
	o, err := runOK(ctx, t, "reading the crontab", read, nil)
	if err != nil {
		return playbooks.Result{}, err
	}
	old := o.stdout
	content := c.apply(old)
	res := playbooks.Result{Data: map[string]any{"jobs": cronNames(content), "envs": cronEnvs(content)}}
	if content == old {
		return res, nil
	}
	if t.Diff {
		res.Diff = unifiedDiff(c.where(), old, content)
	}
	return res, t.Change("update "+c.where(), func() error {
		if c.file != "" {
			if !c.present && strings.TrimSpace(content) == "" {
				_, err := runOK(ctx, t, "removing "+c.file, "rm -f -- "+q(c.file), nil)
				return err
			}
			e := fileEdit{path: c.file, attrs: fileAttrs{mode: 0o644, hasMode: true}}
			_, err := e.write(ctx, t, textFile{}, content)
			return err
		}
		_, err := runOK(ctx, t, "writing the crontab", "crontab"+c.userOpt()+" -", strings.NewReader(content))
		return err
	})
}

func (c cronSpec) userOpt() string {
	if c.user == "" {
		return ""
	}
	return " -u " + q(c.user)
}

func (c cronSpec) where() string {
	if c.file != "" {
		return c.file
	}
	if c.user != "" {
		return "crontab of " + c.user
	}
	return "crontab"
}

func cronArgs(a playbooks.Args) (cronSpec, error) {
	var c cronSpec
	var err error
	c.name, _ = a.String("name", "")
	c.job, _ = strArg(a, "", "job", "value")
	c.user, _ = a.String("user", "")
	state, _ := a.String("state", "present")
	if err := choice("state", state, "present", "absent"); err != nil {
		return c, err
	}
	c.present = state == "present"
	if c.file, _ = a.String("cron_file", ""); c.file != "" && !path.IsAbs(c.file) {
		c.file = "/etc/cron.d/" + c.file
	}
	for i, k := range [][]string{{"minute"}, {"hour"}, {"day", "dom"}, {"month"}, {"weekday", "dow"}} {
		c.times[i], _ = strArg(a, "*", k...)
	}
	c.special, _ = a.String("special_time", "")
	if reboot, _ := a.Bool("reboot", false); reboot {
		c.special = "reboot"
	}
	if c.disabled, err = a.Bool("disabled", false); err != nil {
		return c, err
	}
	if c.env, err = a.Bool("env", false); err != nil {
		return c, err
	}
	c.after, _ = a.String("insertafter", "")
	c.before, _ = a.String("insertbefore", "")
	switch {
	case c.name == "" && c.present:
		return c, fmt.Errorf("%w \"name\": required", playbooks.ErrArgs)
	case c.present && c.job == "" && !c.env:
		return c, fmt.Errorf("%w: You must specify 'job' to install a new cron job or variable", playbooks.ErrArgs)
	case c.file != "" && c.user == "" && c.present && !c.env:
		return c, fmt.Errorf("%w: To use cron_file=... parameter you must specify user=... as well", playbooks.ErrArgs)
	}
	return c, nil
}

// line is the crontab line of the job.
func (c cronSpec) line() string {
	when := strings.Join(c.times[:], " ")
	if c.special != "" {
		when = "@" + c.special
	}
	l := when + " "
	if c.file != "" {
		l += c.user + " "
	}
	l += c.job
	if c.disabled {
		l = "#" + l
	}
	return l
}

// apply returns the crontab with the job (or variable) set or removed.
func (c cronSpec) apply(content string) string {
	lines := strings.Split(strings.TrimSuffix(content, "\n"), "\n")
	if content == "" {
		lines = nil
	}
	if c.env {
		lines = c.applyEnv(lines)
	} else {
		lines = c.applyJob(lines)
	}
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func (c cronSpec) applyJob(lines []string) []string {
	comment := "#Ansible: " + c.name
	for i := 0; i < len(lines); i++ {
		if lines[i] != comment {
			continue
		}
		end := min(i+2, len(lines))
		if !c.present {
			return append(lines[:i:i], lines[end:]...)
		}
		return append(append(lines[:i:i], comment, c.line()), lines[end:]...)
	}
	if !c.present {
		return lines
	}
	return append(lines, comment, c.line())
}

func (c cronSpec) applyEnv(lines []string) []string {
	decl := c.name + "=" + c.job
	for i, l := range lines {
		if strings.HasPrefix(l, c.name+"=") {
			if !c.present {
				return append(lines[:i:i], lines[i+1:]...)
			}
			lines[i] = decl
			return lines
		}
	}
	if !c.present {
		return lines
	}
	switch {
	case c.before != "":
		for i, l := range lines {
			if strings.HasPrefix(l, c.before+"=") {
				return append(append(lines[:i:i], decl), lines[i:]...)
			}
		}
	case c.after != "":
		for i, l := range lines {
			if strings.HasPrefix(l, c.after+"=") {
				return append(append(lines[:i+1:i+1], decl), lines[i+1:]...)
			}
		}
	}
	return append([]string{decl}, lines...)
}

func cronNames(content string) []any {
	out := []any{}
	for _, l := range strings.Split(content, "\n") {
		if n, ok := strings.CutPrefix(l, "#Ansible: "); ok {
			out = append(out, n)
		}
	}
	return out
}

func cronEnvs(content string) []any {
	out := []any{}
	for _, l := range strings.Split(content, "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") && !strings.ContainsAny(k, " \t") {
			out = append(out, k)
		}
	}
	return out
}
