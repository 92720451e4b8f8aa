// Package cli is the orch command line (kong): each command fills orchestrator.Options and
// calls one function of package orchestrator. The cluster verbs are the ones the agent CLI
// mounts too (nodeagent/api/verbs); orch only says how they reach a member (member.go).
package cli

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/alecthomas/kong"

	"orch/nodeagent/api/verbs"
	"orch/orchestrator"
)

// Globals are the flags every command shares.
type Globals struct {
	Inventory  string    `short:"i" help:"Inventory file (INI or YAML)." env:"ORCH_INVENTORY" type:"path"`
	StateDir   string    `help:"orch's state directory (client key, pinned clusters)." env:"ORCH_CONFIG" type:"path"`
	KnownHosts string    `help:"known_hosts file." default:"~/.ssh/known_hosts" type:"path"`
	AcceptNew  bool      `help:"Record unknown host keys (StrictHostKeyChecking=accept-new)."`
	Forks      int       `help:"Hosts acted on at once." default:"64"`
	Limit      string    `short:"l" help:"Restrict to hosts matching this pattern."`
	Verbose    bool      `short:"v" help:"Debug logs (connections, sessions, commands) on stderr."`
	Stdin      io.Reader `kong:"-"`
	Stdout     io.Writer `kong:"-"`
	Stderr     io.Writer `kong:"-"`
}

func (g *Globals) options() orchestrator.Options {
	o := orchestrator.Options{Inventory: g.Inventory, StateDir: g.StateDir, KnownHosts: g.KnownHosts,
		AcceptNew: g.AcceptNew, Forks: g.Forks, Limit: g.Limit, Out: g.Stdout}
	if g.Verbose {
		o.Logger = slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

// CLI is orch's command tree: the workflows over SSH, then the cluster verbs shared with
// the agent CLI (nodeagent/api/verbs), spoken over mutual TLS to a member of the inventory.
type CLI struct {
	Globals
	Up          UpCmd               `cmd:"" help:"Converge every inventory host into one cluster (push, start, bootstrap, join)."`
	Upgrade     UpgradeCmd          `cmd:"" help:"Rolling upgrade to a new agent binary, member by member."`
	Recover     RecoverCmd          `cmd:"" help:"Disaster recovery after losing quorum."`
	Reset       ResetCmd            `cmd:"" help:"Take the agent off hosts: leave the cluster cleanly, remove the unit (--purge: and the agent directory)."`
	Play        PlayCmd             `cmd:"" help:"Run a playbook."`
	Inventory   InventoryCmd        `cmd:"" help:"Show what the inventory holds."`
	Node        NodeCmd             `cmd:"" help:"Run the agent CLI on one host over SSH: orch node NAME -- ARGS."`
	Version     VersionCmd          `cmd:"" help:"Print orch's version."`
	Completion  verbs.CompletionCmd `cmd:"" help:"Print a shell's completion script (bash, zsh, fish)."`
	Cluster     verbs.ClusterCmd    `cmd:"" help:"Manage the cluster's members through its API."`
	verbs.Verbs `embed:""`
}

// exitCode ends a command with a code and no further message.
type exitCode = verbs.ExitCode

// Main runs orch and returns the process exit code: 0 after --help, 1 for a wrong command
// line or a failed command, else the code the command chose (Ansible's for playbooks).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cli := CLI{Globals: Globals{Stdin: stdin, Stdout: stdout, Stderr: stderr}}
	parser, err := kong.New(&cli, append(verbs.Options(stdout, stderr), kong.Name("orch"),
		kong.Description("LXD-style clusters, deployed and operated over SSH from an inventory."),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}))...)
	if err != nil {
		fmt.Fprintln(stderr, "orch:", err)
		return 1
	}
	env := &verbs.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Reacher: inventoryMember{&cli.Globals}}
	return verbs.Main(parser, args, 1, stderr, &cli.Globals, env)
}

// VersionCmd prints orch's version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.Stdout, orchestrator.Version)
	return nil
}
