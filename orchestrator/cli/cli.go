// Package cli is the orch command line (kong): each command fills orchestrator.Options and
// calls one function of package orchestrator.
package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"

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

// CLI is orch's command tree.
type CLI struct {
	Globals
	Up        UpCmd        `cmd:"" help:"Converge every inventory host into one cluster (push, start, bootstrap, join)."`
	Upgrade   UpgradeCmd   `cmd:"" help:"Rolling upgrade to a new agent binary, member by member."`
	Recover   RecoverCmd   `cmd:"" help:"Disaster recovery after losing quorum."`
	Play      PlayCmd      `cmd:"" help:"Run a playbook."`
	Inventory InventoryCmd `cmd:"" help:"Show what the inventory holds."`
	Cluster   ClusterCmd   `cmd:"" help:"Manage the cluster's members through its API."`
	Node      NodeCmd      `cmd:"" help:"Run the agent CLI on one host over SSH: orch node NAME -- ARGS."`
	Launch    LaunchCmd    `cmd:"" help:"Launch an instance (--target picks the member)."`
	List      ListCmd      `cmd:"" help:"List the cluster's instances with their NODE."`
	Start     StartCmd     `cmd:"" help:"Start instances."`
	Stop      StopCmd      `cmd:"" help:"Stop instances."`
	Restart   RestartCmd   `cmd:"" help:"Restart instances."`
	Delete    DeleteCmd    `cmd:"" help:"Delete instances."`
	Exec      ExecCmd      `cmd:"" help:"Run a command in an instance: orch exec NAME -- CMD..."`
	File      FileCmd      `cmd:"" help:"Copy files into and out of instances."`
	Storage   StorageCmd   `cmd:"" help:"Manage storage pools and volumes through the cluster API."`
	Network   NetworkCmd   `cmd:"" help:"Manage bridge networks through the cluster API."`
	Image     ImageCmd     `cmd:"" help:"Manage the cluster's images (import streams a tarball)."`
	Profile   ProfileCmd   `cmd:"" help:"Manage the cluster's profiles."`
	Remote    RemoteCmd    `cmd:"" help:"Manage the cluster's image servers (simplestreams)."`
	Version   VersionCmd   `cmd:"" help:"Print orch's version."`
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
	return verbs.Main(parser, args, 1, stderr, &cli.Globals)
}

// VersionCmd prints orch's version.
type VersionCmd struct{}

// Run prints the version.
func (VersionCmd) Run(g *Globals) error {
	fmt.Fprintln(g.Stdout, orchestrator.Version)
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
