package verbs

import (
	"context"
	"errors"
	"io"
	"os"

	"orch/nodeagent/api"
)

// ExecCmd is `exec NAME [--] CMD...`, as `lxc exec`: output and exit code passed through,
// stdin streamed unless it is a terminal or -n.
type ExecCmd struct {
	Name    string   `arg:""`
	Command []string `arg:"" passthrough:"" help:"Command and arguments (after --)."`
	Cwd     string   `help:"Working directory inside the instance."`
	Env     []string `help:"Extra KEY=VALUE variables (repeatable)."`
	NoStdin bool     `short:"n" help:"Do not send stdin."`
}

// Run runs the command and ends with its exit code.
func (c *ExecCmd) Run(e *Env) error {
	argv := c.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return errors.New("no command given (exec NAME -- CMD...)")
	}
	var stdin io.Reader
	if !c.NoStdin && e.Stdin != nil && !isTerminal(e.Stdin) {
		stdin = e.Stdin
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		code, err := cl.Exec(ctx, c.Name, argv, api.ExecOptions{Cwd: c.Cwd, Env: c.Env}, stdin, e.Stdout, e.Stderr)
		if err != nil {
			return err
		}
		if code != 0 {
			return ExitCode(code)
		}
		return nil
	})
}

// isTerminal reports whether v is a terminal (a character device).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
