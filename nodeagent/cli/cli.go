// Package cli is the nodeagent command line: the daemon itself and the per-node commands
// that talk to it over its unix socket (or, for list-database and recovery, read the agent
// directory directly with the daemon stopped), plus the cluster verbs it shares with orch
// (nodeagent/api/verbs), which reach the daemon through the same socket (socket.go).
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"orch/nodeagent/api"
	"orch/nodeagent/api/verbs"
	"orch/nodeagent/daemon"
	"orch/nodeagent/version"
	"orch/output"
)

// Globals are the flags every command shares. Like LXD_DIR, --dir or $NODEAGENT_DIR selects
// the agent, so several agents can share one machine.
type Globals struct {
	Dir    string    `help:"Agent directory." env:"NODEAGENT_DIR" default:"/var/lib/nodeagent" type:"path"`
	Stdin  io.Reader `kong:"-"`
	Stdout io.Writer `kong:"-"`
	Stderr io.Writer `kong:"-"`
}

// client returns a client of the daemon's unix socket.
func (g *Globals) client() *api.Client { return api.NewUnixClient(daemon.SocketPath(g.Dir)) }

// CLI is the nodeagent command tree: the daemon and what needs the agent directory, then
// the cluster verbs shared with orch (nodeagent/api/verbs), spoken over the unix socket.
type CLI struct {
	Globals
	AgentCommands `embed:""`
	Cluster       ClusterCmd          `cmd:"" help:"Manage the cluster's members."`
	Completion    verbs.CompletionCmd `cmd:"" help:"Print a shell's completion script (bash, zsh, fish)."`
	verbs.Verbs   `embed:""`
}

// AgentCommands are the commands orch runs on every host while it forms or converges a
// cluster (start, wait, ask, join, lend the binary), and query, which the playbook modules
// lxd_container and lxd_profile run on a host for each API request. Main parses them with a tree of these
// alone (agentCLI): building the whole tree, the verbs included, cost 3 ms of CPU per
// process against 0.3 ms (kong.New reflects over every command and flag), and `orch up`
// of 200 hosts starts about 800 such processes, on hosts that may be small.
type AgentCommands struct {
	Daemon    DaemonCmd    `cmd:"" help:"Run the agent daemon in the foreground."`
	Waitready WaitreadyCmd `cmd:"" help:"Wait until the daemon answers."`
	Init      InitCmd      `cmd:"" help:"Bootstrap a cluster or join one (interactively, or --preseed from stdin)."`
	Info      InfoCmd      `cmd:"" help:"Show what this agent is."`
	Version   VersionCmd   `cmd:"" help:"Print the agent's version."`
	ServeFile ServeFileCmd `cmd:"" name:"serve-file" hidden:"" help:"Lend a file to other hosts (orch's fan-out of the agent)."`
	Query     QueryCmd     `cmd:"" help:"Send one raw request to the REST API and print the JSON answer (lxc query's shape)."`
}

// agentCLI is the tree Main parses AgentCommands with.
type agentCLI struct {
	Globals
	AgentCommands `embed:""`
}

// Main runs the CLI and returns the process exit code: 0 after --help or with no command
// (the usage is printed, as plain `lxc` does), 2 for a wrong command line, 1 for a failed
// command, else the code the command chose (exec passes the remote command's through).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := Globals{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	if agentCommand(args) && os.Getenv("COMP_LINE") == "" {
		root := &agentCLI{Globals: g}
		return run(root, &root.Globals, args)
	}
	root := &CLI{Globals: g}
	return run(root, &root.Globals, args)
}

// run parses args with the tree root, whose Globals are g, and runs the chosen command.
func run(root any, g *Globals, args []string) int {
	parser, err := kong.New(root, append(verbs.Options(g.Stdout, g.Stderr), kong.Name("nodeagent"),
		kong.Description("The orch node agent: an LXD-style cluster member."))...)
	if err != nil {
		fmt.Fprintln(g.Stderr, "nodeagent:", err)
		return 1
	}
	env := &verbs.Env{Stdin: g.Stdin, Stdout: g.Stdout, Stderr: g.Stderr, Reacher: socket{g}}
	return verbs.Main(parser, args, 2, g.Stderr, g, env)
}

// agentCommand reports whether args name one of AgentCommands after the global flags
// (--dir only); anything else, or another flag first, takes the whole tree.
func agentCommand(args []string) bool {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--dir":
			i++
		case strings.HasPrefix(a, "--dir="):
		case strings.HasPrefix(a, "-"):
			return false
		default:
			return agentCommandNames()[a]
		}
	}
	return false
}

// agentCommandNames are the command words of AgentCommands (a field's name tag, else its
// name in lower case).
func agentCommandNames() map[string]bool {
	names := map[string]bool{}
	t := reflect.TypeFor[AgentCommands]()
	for i := range t.NumField() {
		f := t.Field(i)
		if n := f.Tag.Get("name"); n != "" {
			names[n] = true
		} else {
			names[strings.ToLower(f.Name)] = true
		}
	}
	return names
}

// exitCode ends a command with a code and no message.
type exitCode = verbs.ExitCode

// VersionCmd prints the version triple.
type VersionCmd struct {
	Format output.Format `help:"table or json." default:"table"`
}

// Run prints the version; orch reads the JSON form of a new binary before an upgrade.
func (c *VersionCmd) Run(g *Globals) error {
	v := version.Current()
	if c.Format == output.FormatJSON || c.Format == output.FormatYAML {
		return output.Render(g.Stdout, c.Format, v, nil)
	}
	fmt.Fprintf(g.Stdout, "%s (schema %d, api %d)\n", v.Version, v.Schema, v.APILevel)
	return nil
}

// WaitreadyCmd waits until the daemon is ready: it answers on its socket and, when it is a
// cluster member, a linearizable read of the cluster database works (a leader is known and
// confirms it leads), so that the next command does not fail with "no database leader known".
type WaitreadyCmd struct {
	Timeout int `help:"Seconds to wait (0: forever)." default:"0"`
}

// Run polls the socket until GET /1.0 succeeds (it reads the cluster configuration
// linearizably on a member) or the timeout passes.
func (c *WaitreadyCmd) Run(g *Globals) error {
	ctx := context.Background()
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(c.Timeout)*time.Second)
		defer cancel()
	}
	cl := g.client()
	defer cl.Close()
	var lastErr error
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, _, err := cl.Server(rctx)
		cancel()
		if err == nil {
			err = s.Environment.Ready()
		}
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("the daemon in %s did not answer within %ds: %v", g.Dir, c.Timeout, lastErr)
		case <-time.After(25 * time.Millisecond):
		}
	}
}
