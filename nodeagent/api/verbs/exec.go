package verbs

import (
	"context"
	"errors"
	"io"
	"os"

	"golang.org/x/term"

	"orch/nodeagent/api"
)

// ExecCmd is `exec NAME [--] CMD...`, as `lxc exec`: the command's output and exit code
// passed through. When stdin and stdout are terminals (or -t) the command gets a terminal
// of the caller's window size, which follows the window (SIGWINCH), with the local
// terminal in raw mode meanwhile; otherwise (or -T) stdin is streamed, unless -n.
type ExecCmd struct {
	Name             string   `arg:""`
	Command          []string `arg:"" passthrough:"" help:"Command and arguments (after --)."`
	Cwd              string   `help:"Working directory inside the instance."`
	Env              []string `help:"Extra KEY=VALUE variables (repeatable)."`
	NoStdin          bool     `short:"n" name:"disable-stdin" aliases:"no-stdin" help:"Do not send stdin."`
	ForceInteractive bool     `short:"t" name:"force-interactive" help:"Give the command a terminal even when stdin or stdout is none."`
	ForceNonInteract bool     `short:"T" name:"force-noninteractive" help:"Never give the command a terminal."`
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
	if c.ForceInteractive && c.ForceNonInteract {
		return errors.New("-t and -T contradict each other")
	}
	interactive := c.ForceInteractive || (!c.ForceNonInteract && isTerminal(e.Stdin) && isTerminal(e.Stdout))
	if interactive {
		return c.runTTY(e, argv)
	}
	var stdin io.Reader
	if !c.NoStdin && e.Stdin != nil && !isTerminal(e.Stdin) {
		stdin = e.Stdin
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		code, err := cl.Exec(ctx, c.Name, argv, api.ExecOptions{Cwd: c.Cwd, Env: c.Env}, stdin, e.Stdout, e.Stderr)
		return exitWith(code, err)
	})
}

// runTTY runs argv on a terminal (see terminal.go for the local side).
func (c *ExecCmd) runTTY(e *Env, argv []string) error {
	local, err := openTerminal(e.Stdin, e.Stdout)
	if err != nil {
		return err
	}
	defer local.restore()
	var stdin io.Reader
	if !c.NoStdin {
		stdin = e.Stdin
	}
	env := c.Env
	if term := os.Getenv("TERM"); term != "" {
		env = append([]string{"TERM=" + term}, env...)
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		code, err := cl.ExecTTY(ctx, c.Name, argv, api.ExecOptions{Cwd: c.Cwd, Env: env}, local.size(), stdin, local.resizes(), e.Stdout)
		return exitWith(code, err)
	})
}

// exitWith turns an exec's result into the command's: the remote exit code is ours.
func exitWith(code int, err error) error {
	if err != nil {
		return err
	}
	if code != 0 {
		return ExitCode(code)
	}
	return nil
}

// isTerminal reports whether v is a terminal (not merely a character device: /dev/null is
// one too).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
