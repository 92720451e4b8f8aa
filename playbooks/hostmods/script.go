package hostmods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"orch/playbooks"
)

// scriptModule copies a controller script to the host, runs it with its arguments and
// removes it: `script: files/setup.sh --fast creates=/x`.
type scriptModule struct{}

var scriptOptions = []string{"creates", "removes", "chdir", "executable", "decrypt"}

// FreeForm splits `path args... creates=/x` into cmd and options.
func (scriptModule) FreeForm(raw string) (map[string]any, error) {
	return playbooks.CommandFreeForm(raw, scriptOptions...)
}

func (scriptModule) Run(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	a := t.Args
	if err := playbooks.AllowArgs("script", a, append([]string{"cmd", "_raw_params", "free_form"}, scriptOptions...)...); err != nil {
		return playbooks.Result{}, err
	}
	cmd, _ := strArg(a, "", "cmd", "_raw_params", "free_form")
	fields := strings.Fields(cmd)
	if len(fields) == 0 {
		return playbooks.Result{}, fmt.Errorf("%w: script needs the path of a script", playbooks.ErrArgs)
	}
	local := t.LocalPath(fields[0])
	if _, err := os.Stat(local); errors.Is(err, os.ErrNotExist) {
		if alt := t.LocalPath(path.Join("files", fields[0])); fileExists(alt) {
			local = alt
		}
	}
	if !fileExists(local) {
		return playbooks.Result{}, fmt.Errorf("%w: could not find or access %s on the controller", playbooks.ErrArgs, fields[0])
	}
	for _, g := range []struct {
		key  string
		want int
		msg  string
	}{{"creates", 0, "skipped, since %s exists"}, {"removes", 1, "skipped, since %s does not exist"}} {
		if p, _ := a.String(g.key, ""); p != "" {
			o, err := run(ctx, t, "test -e "+q(p), nil)
			if err != nil {
				return playbooks.Result{}, err
			}
			if (o.rc == 0) == (g.want == 0) {
				return playbooks.Result{Skipped: true, Msg: fmt.Sprintf(g.msg, p), Data: map[string]any{"rc": 0, "stdout": "", "stderr": ""}}, nil
			}
		}
	}
	args := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(cmd), fields[0]))
	data := map[string]any{}
	res := playbooks.Result{Data: data}
	err := t.Change("run script "+fields[0], func() error {
		o, err := runScript(ctx, t, local, args)
		if err != nil {
			return err
		}
		for k, v := range commandData(o) {
			data[k] = v
		}
		if o.rc != 0 {
			res.Failed, res.Msg = true, fmt.Sprintf("non-zero return code %d", o.rc)
		}
		return nil
	})
	return res, err
}

// runScript pushes the script to a temporary file, runs it (with executable if set) and
// removes it, in one command after the push.
func runScript(ctx context.Context, t *playbooks.TaskContext, local, args string) (output, error) {
	remote, err := pushTemp(ctx, t, local, fmt.Sprintf("orch-script-%d", time.Now().UnixNano()))
	if err != nil {
		return output{}, err
	}
	run1 := q(remote)
	if exe, _ := t.Args.String("executable", ""); exe != "" {
		run1 = exe + " " + run1
	}
	script := "chmod 700 " + q(remote) + " || exit 1\n"
	if dir, _ := t.Args.String("chdir", ""); dir != "" {
		script += "cd " + q(dir) + " || exit 1\n"
	}
	script += run1 + " " + args + "\nrc=$?\nrm -rf -- " + q(path.Dir(remote)) + "\nexit $rc"
	return run(ctx, t, script, nil)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
