package verbs

import (
	"errors"
	"fmt"
	"io"

	"github.com/alecthomas/kong"
)

// ExitCode ends a command with a code and no further message (exec passes the remote
// command's code through it).
type ExitCode int

// Error says which code.
func (e ExitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

// exitRequest is what kong's Exit panics with: kong calls Exit(0) from the --help flag's
// hook in the middle of Parse, and parsing must stop there, before anything runs.
type exitRequest int

// exit is the kong.Exit of both binaries (see Options).
func exit(code int) { panic(exitRequest(code)) }

// Options are the kong options both binaries build their parser with: help and usage on
// out, errors on errw, --help ending the parse (Main turns that into exit code 0), and
// negative numbers as values (see EscapeNegativeNumbers).
func Options(out, errw io.Writer) []kong.Option {
	return append([]kong.Option{kong.Writers(out, errw), kong.Exit(exit)}, negativeNumberMappers()...)
}

// Main parses args with k and runs the chosen command with binds, and returns the process
// exit code: 0 after --help/-h (help printed, nothing run, created or asked) and after a
// bare command group such as `cluster` (its help printed, as `lxc cluster` does), usage
// for a wrong command line, the code an ExitCode carries, 1 for any other error. Errors go
// to errw: "NAME: ..." for the command line, "Error: ..." for a command. When $COMP_LINE
// is set, Main answers the shell's completion request instead (see CompletionCmd).
func Main(k *kong.Kong, args []string, usage int, errw io.Writer, binds ...any) int {
	if answered, err := complete(k); answered || err != nil {
		if err != nil {
			fmt.Fprintf(errw, "%s: completion: %v\n", k.Model.Name, err)
			return 1
		}
		return 0
	}
	kctx, code, err := parse(k, EscapeNegativeNumbers(args))
	if err != nil {
		fmt.Fprintf(errw, "%s: %v\n", k.Model.Name, err)
		return usage
	}
	if kctx == nil {
		return code
	}
	err = kctx.Run(binds...)
	var ec ExitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	}
	fmt.Fprintln(errw, "Error:", err)
	return 1
}

// parse is k.Parse that stops at --help: it returns a nil context and the code kong asked
// to exit with, or (for a bare command group) prints the group's help and returns 0.
func parse(k *kong.Kong, args []string) (kctx *kong.Context, code int, err error) {
	defer func() {
		if r := recover(); r != nil {
			req, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			kctx, code, err = nil, int(req), nil
		}
	}()
	kctx, err = k.Parse(args)
	var pe *kong.ParseError
	if err != nil && errors.As(err, &pe) && bareGroup(pe.Context) {
		return nil, 0, pe.Context.PrintUsage(false)
	}
	return kctx, 0, err
}

// bareGroup reports whether a failed parse named only a command group (or nothing): every
// argument was understood and the last command has subcommands but none was given.
func bareGroup(kctx *kong.Context) bool {
	if kctx == nil || kctx.Error != nil || len(kctx.Path) == 0 {
		return false
	}
	var node *kong.Node
	for _, p := range kctx.Path {
		switch {
		case p.App != nil:
			node = p.App.Node
		case p.Command != nil:
			node = p.Command
		case p.Positional != nil, p.Argument != nil:
			return false
		}
	}
	if node == nil {
		return false
	}
	for _, ch := range node.Children {
		if ch.Type == kong.CommandNode {
			return len(node.Positional) == 0
		}
	}
	return false
}

// CommandPaths lists every command of app as the words that select it ("cluster list"),
// parents before children, for tests and completion that must cover the whole tree.
func CommandPaths(app *kong.Application) [][]string {
	var out [][]string
	var walk func(n *kong.Node, path []string)
	walk = func(n *kong.Node, path []string) {
		for _, ch := range n.Children {
			if ch.Type != kong.CommandNode {
				continue
			}
			p := append(append([]string{}, path...), ch.Name)
			out = append(out, p)
			walk(ch, p)
		}
	}
	walk(app.Node, nil)
	return out
}
