package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"text/tabwriter"

	"github.com/alecthomas/kong"

	"orch/integration/lab"
)

// cli is orchlab's command line.
type cli struct {
	Verbose bool `short:"v" help:"Log each step of the lab."`

	Up        upCmd     `cmd:"" help:"Create a lab of test hosts in DIR and print them."`
	Down      downCmd   `cmd:"" help:"Remove the lab in DIR, or every lab (--all)."`
	Status    statusCmd `cmd:"" help:"Show the hosts of the lab in DIR."`
	Exec      execCmd   `cmd:"" help:"Run a command inside a host (as root, not through SSH)."`
	Kill      hostCmd   `cmd:"" help:"Kill every process of a host, or power a Debian host off hard (its data stays)."`
	Reboot    hostCmd   `cmd:"" help:"Reboot a Debian host cleanly through systemd and wait until sshd answers."`
	Start     hostCmd   `cmd:"" help:"Start a killed host again."`
	Partition hostCmd   `cmd:"" help:"Cut a host off the network (link down)."`
	Heal      hostCmd   `cmd:"" help:"Reconnect a partitioned host."`
	Uplink    uplinkCmd `cmd:"" help:"Shape the link between this machine and the lab's hosts to RATE (tc syntax, e.g. 100mbit), or unshape it with \"none\"."`
}

// env is what every command gets: output and a logger.
type env struct {
	out io.Writer
	log *slog.Logger
}

func run(args []string, stdout, stderr io.Writer) error {
	var c cli
	parser, err := kong.New(&c, kong.Name("orchlab"), kong.Writers(stdout, stderr),
		kong.Description("Test hosts on one machine: network namespace + mount namespace + real sshd."))
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if c.Verbose {
		level = slog.LevelInfo
	}
	e := &env{out: stdout, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	kctx.BindTo(ctx, (*context.Context)(nil))
	return kctx.Run(e)
}

type upCmd struct {
	Dir     string            `required:"" type:"path" help:"Lab directory (keys, known_hosts, inventory.ini, host data)."`
	Hosts   int               `short:"n" default:"3" help:"Number of hosts."`
	OS      string            `name:"os" enum:"namespace,debian" default:"namespace" help:"Kind of host: namespace (sshd in a network namespace over this machine's files) or debian (Debian 12 system container booted by systemd, base rootfs built once with debootstrap)."`
	Uplink  string            `placeholder:"RATE" help:"Shape the control-to-host link to RATE (tc syntax: 100mbit, 1gbit, 12.5mbps); host-to-host traffic stays unshaped."`
	Replace bool              `help:"Remove a lab already in DIR first."`
	Var     map[string]string `help:"Extra inventory variable KEY=VALUE for [all:vars] (repeatable)."`
}

func (c *upCmd) Run(e *env, ctx context.Context) error {
	if c.Replace {
		if err := down(c.Dir, false, e); err != nil {
			return err
		}
	}
	os := lab.OSNamespace
	if c.OS == "debian" {
		os = lab.OSDebian
	}
	l, err := lab.Create(ctx, c.Dir, c.Hosts, lab.WithLogger(e.log), lab.WithOS(os), lab.WithUplink(c.Uplink))
	if err != nil {
		return err
	}
	inv := filepath.Join(l.Dir(), "inventory.ini")
	if err := l.WriteInventory(inv, c.Var); err != nil {
		return errors.Join(err, l.Close())
	}
	fmt.Fprintf(e.out, "lab %s up in %s (subnet %s, gateway %s%s)\n", l.ID(), l.Dir(), l.Subnet(), l.Gateway(), uplinkNote(l))
	for _, h := range l.Hosts() {
		fmt.Fprintf(e.out, "  %-8s %s\n", h.Name, h.Addr)
	}
	fmt.Fprintf(e.out, "inventory    %s\nkey          %s\nknown_hosts  %s\nssh          ssh -F %s host1\n",
		inv, l.KeyFile(), l.KnownHostsFile(), l.SSHConfigFile())
	return nil
}

type downCmd struct {
	Dir      string `xor:"which" required:"" type:"path" help:"Lab directory."`
	All      bool   `xor:"which" required:"" help:"Remove every lab under /tmp/orch-lab* and every leftover lab netns, link and cgroup."`
	KeepData bool   `help:"Keep the lab's files (keys, host data) in DIR. Otherwise a DIR matching /tmp/orch-lab* is removed whole, any other DIR loses only the lab's files."`
	Orphans  bool   `default:"true" negatable:"" help:"Also remove labs under /tmp/orch-lab* of test processes that no longer run."`
}

func (c *downCmd) Run(e *env) error {
	if c.All {
		return lab.Sweep(lab.SweepGlob, "orl", lab.WithLogger(e.log))
	}
	err := down(c.Dir, c.KeepData, e)
	if c.Orphans {
		err = errors.Join(err, lab.SweepOrphans(lab.SweepGlob, lab.WithLogger(e.log)))
	}
	return err
}

// down removes the lab in dir; no lab there is no error.
func down(dir string, keepData bool, e *env) error {
	l, err := lab.Load(dir, lab.WithLogger(e.log))
	if errors.Is(err, lab.ErrNoState) {
		return nil
	}
	if err != nil {
		return err
	}
	switch dedicated, _ := filepath.Match(lab.SweepGlob, filepath.Clean(l.Dir())); {
	case keepData:
		err = l.Close()
	case dedicated: // /tmp/orch-lab*: the directory is the lab's, with what others put there (orch state)
		if err = l.Close(); err == nil {
			err = os.RemoveAll(l.Dir())
		}
	default:
		err = l.Purge()
	}
	if err == nil {
		fmt.Fprintf(e.out, "lab %s in %s removed\n", l.ID(), dir)
	}
	return err
}

type statusCmd struct {
	Dir string `required:"" type:"path" help:"Lab directory."`
}

func (c *statusCmd) Run(e *env) error {
	l, err := lab.Load(c.Dir, lab.WithLogger(e.log))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "lab %s in %s (subnet %s%s)\n", l.ID(), l.Dir(), l.Subnet(), uplinkNote(l))
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDR\tSTATE")
	for _, h := range l.Hosts() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.Name, h.Addr, hostState(h))
	}
	return tw.Flush()
}

func hostState(h *lab.Host) string {
	state := "down"
	if h.Running() {
		state = "up"
	}
	if p, err := h.Partitioned(); err != nil {
		return state + ", link missing"
	} else if p {
		return state + ", partitioned"
	}
	return state
}

type execCmd struct {
	Dir     string   `required:"" type:"path" help:"Lab directory."`
	Host    string   `arg:"" help:"Host name (host1, ...)."`
	Command []string `arg:"" passthrough:"" help:"Command and arguments."`
}

func (c *execCmd) Run(e *env, ctx context.Context) error {
	h, err := loadHost(c.Dir, c.Host, e)
	if err != nil {
		return err
	}
	args := c.Command
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("exec: no command")
	}
	out, err := h.Exec(ctx, args...)
	e.out.Write(out)
	return err
}

// hostCmd is a fault or repair applied to one host; the command's name says which.
type uplinkCmd struct {
	Dir  string `required:"" type:"path" help:"Lab directory."`
	Rate string `arg:"" help:"Rate in tc syntax (100mbit, 1gbit, 12.5mbps), or none."`
}

func (c *uplinkCmd) Run(e *env) error {
	l, err := lab.Load(c.Dir, lab.WithLogger(e.log))
	if err != nil {
		return err
	}
	rate := c.Rate
	if rate == "none" {
		rate = ""
	}
	if err := l.SetUplink(rate); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "lab %s: uplink %s\n", l.ID(), c.Rate)
	return nil
}

// uplinkNote is ", uplink RATE" for a shaped lab.
func uplinkNote(l *lab.Lab) string {
	if r := l.Uplink(); r != "" {
		return ", uplink " + r
	}
	return ""
}

type hostCmd struct {
	Dir  string `required:"" type:"path" help:"Lab directory."`
	Host string `arg:"" help:"Host name (host1, ...)."`
}

func (c *hostCmd) Run(e *env, ctx context.Context, kctx *kong.Context) error {
	h, err := loadHost(c.Dir, c.Host, e)
	if err != nil {
		return err
	}
	switch kctx.Selected().Name {
	case "kill":
		return h.Kill()
	case "reboot":
		return h.Reboot(ctx)
	case "start":
		return h.Start(ctx)
	case "partition":
		return h.Partition()
	case "heal":
		return h.Heal()
	}
	return fmt.Errorf("unknown command %q", kctx.Selected().Name)
}

func loadHost(dir, name string, e *env) (*lab.Host, error) {
	l, err := lab.Load(dir, lab.WithLogger(e.log))
	if err != nil {
		return nil, err
	}
	h := l.Host(name)
	if h == nil {
		return nil, fmt.Errorf("%s: no host %q in lab %s", dir, name, l.ID())
	}
	return h, nil
}
