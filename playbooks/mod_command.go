package playbooks

import (
	"context"
	"fmt"
	"io"
	"strings"

	"orch/internal/shell"
)

// commandModule is command and shell. Both hand the command line to
// Conn.Run, which runs it through the host's shell; `argv` is quoted
// word by word, and shell's `executable` picks another shell.
type commandModule struct{ shell bool }

var commandOptions = []string{"creates", "removes", "chdir", "stdin", "executable", "stdin_add_newline"}

func (m commandModule) name() string {
	if m.shell {
		return "shell"
	}
	return "command"
}

// FreeForm splits `echo hi creates=/x chdir=/tmp` into cmd and options.
func (m commandModule) FreeForm(raw string) (map[string]any, error) {
	return CommandFreeForm(raw, commandOptions...)
}

func (m commandModule) Run(ctx context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs(m.name(), t.Args, append([]string{"cmd", "argv"}, commandOptions...)...); err != nil {
		return Result{}, err
	}
	cmd, err := m.commandLine(t.Args)
	if err != nil {
		return Result{}, err
	}
	if skip, msg, err := guard(ctx, t); err != nil || skip {
		return Result{Msg: msg, Data: map[string]any{"cmd": cmd, "rc": 0, "stdout": "", "stderr": ""}}, err
	}
	var stdin io.Reader
	if t.Args.Has("stdin") {
		s, _ := t.Args.String("stdin", "")
		if add, err := t.Args.Bool("stdin_add_newline", true); err == nil && add {
			s += "\n"
		}
		stdin = strings.NewReader(s)
	}
	return runCommand(ctx, t, cmd, stdin)
}

func (m commandModule) commandLine(args Args) (string, error) {
	var cmd string
	if args.Has("argv") {
		argv, err := args.StringList("argv")
		if err != nil {
			return "", err
		}
		cmd = shell.Join(argv...)
	} else {
		var err error
		if cmd, err = args.Required("cmd"); err != nil {
			return "", err
		}
	}
	if strings.TrimSpace(cmd) == "" {
		return "", fmt.Errorf("%w: %s: empty command", ErrArgs, m.name())
	}
	if exe, _ := args.String("executable", ""); m.shell && exe != "" {
		cmd = shell.Quote(exe) + " -c " + shell.Quote(cmd)
	}
	if dir, _ := args.String("chdir", ""); dir != "" {
		cmd = "cd " + shell.Quote(dir) + " && " + cmd
	}
	return cmd, nil
}

// guard implements creates= and removes=: it reports skip when the command
// need not run.
func guard(ctx context.Context, t *TaskContext) (bool, string, error) {
	for _, g := range []struct {
		key  string
		want bool
		msg  string
	}{{"creates", true, "skipped, since %s exists"}, {"removes", false, "skipped, since %s does not exist"}} {
		p, _ := t.Args.String(g.key, "")
		if p == "" {
			continue
		}
		_, _, rc, err := remote(ctx, t, "test -e "+shell.Quote(p), nil)
		if err != nil {
			return false, "", err
		}
		if (rc == 0) == g.want {
			return true, fmt.Sprintf(g.msg, p), nil
		}
	}
	return false, "", nil
}

// checkModeMsg is what a command reports in check mode, as Ansible's does.
const checkModeMsg = "Command would have run if not in check mode"

// runCommand runs cmd through the Change gate and registers rc/stdout/stderr.
// In check mode a command is skipped, as Ansible's command, shell and raw
// are: its registered result has rc None and empty output, so conditions
// on it (`when: r.rc == 0`) are false rather than errors.
func runCommand(ctx context.Context, t *TaskContext, cmd string, stdin io.Reader) (Result, error) {
	data := map[string]any{"cmd": cmd}
	if t.Check {
		data["rc"], data["stdout"], data["stderr"] = nil, "", ""
		data["stdout_lines"], data["stderr_lines"] = []any{}, []any{}
		return Result{Skipped: true, Msg: checkModeMsg, Data: data}, nil
	}
	err := t.Change("run "+cmd, func() error {
		out, errOut, rc, err := remote(ctx, t, cmd, stdin)
		if err != nil {
			return err
		}
		data["rc"], data["stdout"], data["stderr"] = rc, out, errOut
		data["stdout_lines"], data["stderr_lines"] = lines(out), lines(errOut)
		return nil
	})
	if err != nil {
		return Result{Data: data}, err
	}
	res := Result{Changed: true, Data: data}
	if rc, ok := data["rc"].(int); ok && rc != 0 {
		res.Failed = true
		res.Msg = fmt.Sprintf("non-zero return code %d", rc)
		if e, _ := data["stderr"].(string); e != "" {
			res.Msg += ": " + lastLine(e)
		}
	}
	return res, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// rawModule runs its free-form string as it is.
type rawModule struct{}

// FreeForm keeps the whole string as the command.
func (rawModule) FreeForm(raw string) (map[string]any, error) { return map[string]any{"cmd": raw}, nil }

func (rawModule) Run(ctx context.Context, t *TaskContext) (Result, error) {
	if err := allowArgs("raw", t.Args, "cmd", "executable"); err != nil {
		return Result{}, err
	}
	cmd, err := t.Args.Required("cmd")
	if err != nil {
		return Result{}, err
	}
	if exe, _ := t.Args.String("executable", ""); exe != "" {
		cmd = shell.Quote(exe) + " -c " + shell.Quote(cmd)
	}
	return runCommand(ctx, t, cmd, nil)
}

// pingModule checks that the host runs commands.
func pingModule(ctx context.Context, t *TaskContext) (Result, error) {
	data, _ := t.Args.String("data", "pong")
	out, err := remoteOK(ctx, t, "echo "+shell.Quote(data), nil)
	if err != nil {
		return Result{}, err
	}
	return Result{Data: map[string]any{"ping": out}}, nil
}
