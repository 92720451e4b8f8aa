package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"orch/nodeagent/api"
	"orch/output"
)

// The instance verbs talk HTTPS to the first reachable member (withCluster); requests
// about an instance are forwarded inside the cluster to the member that owns it.

// LaunchCmd is `orch launch [--target NODE] IMAGE NAME`.
type LaunchCmd struct {
	Image    string   `arg:"" help:"Image: alias, fingerprint or REMOTE:ALIAS."`
	Name     string   `arg:"" help:"Instance name."`
	Target   string   `help:"Member to launch on (default: the one with the fewest instances)."`
	Profiles []string `short:"p" name:"profile" help:"Profile to apply (repeatable; default: default)."`
	NoStart  bool     `help:"Create without starting."`
}

// Run launches the instance.
func (c *LaunchCmd) Run(g *Globals) error {
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		in, err := cl.Launch(ctx, api.InstancesPost{Name: c.Name, Source: c.Image, Profiles: c.Profiles, NoStart: c.NoStart}, c.Target)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.Stdout, "Launched %s on %s\n", in.Name, in.Location)
		return nil
	})
}

// ListCmd is `orch list`: every instance with its NODE.
type ListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the instances.
func (c *ListCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		is, err := cl.Instances(ctx)
		if err != nil {
			return err
		}
		return output.Render(g.Stdout, c.Format, is, func() ([]string, [][]string) { return output.InstanceTable(is) })
	})
}

// StartCmd is `orch start NAME...`.
type StartCmd struct {
	Names []string `arg:""`
}

// Run starts each instance.
func (c *StartCmd) Run(g *Globals) error { return setState(g, c.Names, "start", false) }

// StopCmd is `orch stop [--force] NAME...`.
type StopCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Kill instead of a clean shutdown."`
}

// Run stops each instance.
func (c *StopCmd) Run(g *Globals) error { return setState(g, c.Names, "stop", c.Force) }

// RestartCmd is `orch restart [--force] NAME...`.
type RestartCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Kill instead of a clean shutdown."`
}

// Run restarts each instance.
func (c *RestartCmd) Run(g *Globals) error { return setState(g, c.Names, "restart", c.Force) }

func setState(g *Globals, names []string, action string, force bool) error {
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		for _, n := range names {
			if err := cl.SetInstanceState(ctx, n, api.InstanceStatePut{Action: action, Force: force}); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
		return nil
	})
}

// DeleteCmd is `orch delete [--force] NAME...`.
type DeleteCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Stop running instances first."`
}

// Run deletes each instance.
func (c *DeleteCmd) Run(g *Globals) error {
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		for _, n := range c.Names {
			if err := cl.DeleteInstance(ctx, n, c.Force); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
		}
		return nil
	})
}

// ExecCmd is `orch exec NAME -- CMD...`; orch exits with the command's exit code.
type ExecCmd struct {
	Name    string   `arg:""`
	Command []string `arg:"" passthrough:"" help:"Command and arguments (after --)."`
	NoStdin bool     `short:"n" help:"Do not send stdin."`
}

// Run runs the command.
func (c *ExecCmd) Run(g *Globals) error {
	argv := c.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return errors.New("no command given (exec NAME -- CMD...)")
	}
	var stdin io.Reader
	if f, ok := g.Stdin.(*os.File); !c.NoStdin && g.Stdin != nil && !(ok && stdinTerminal(f)) {
		stdin = g.Stdin
	}
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		code, err := cl.Exec(ctx, c.Name, argv, api.ExecOptions{}, stdin, g.Stdout, g.Stderr)
		if err != nil {
			return err
		}
		if code != 0 {
			return exitCode(code)
		}
		return nil
	})
}

// FileCmd groups file push and pull.
type FileCmd struct {
	Pull FilePullCmd `cmd:"" help:"Copy a file out of an instance to stdout: NAME/PATH."`
	Push FilePushCmd `cmd:"" help:"Copy a local file into an instance: SRC NAME/PATH."`
}

// FilePullCmd is `orch file pull NAME/PATH` (to stdout).
type FilePullCmd struct {
	Source string `arg:"" help:"NAME/PATH inside the instance."`
}

// Run writes the file to stdout.
func (c *FilePullCmd) Run(g *Globals) error {
	name, path, err := splitInstancePath(c.Source)
	if err != nil {
		return err
	}
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		_, err := cl.PullFile(ctx, name, path, g.Stdout)
		return err
	})
}

// FilePushCmd is `orch file push SRC NAME/PATH`.
type FilePushCmd struct {
	Source string `arg:"" help:"Local file."`
	Dest   string `arg:"" help:"NAME/PATH inside the instance."`
}

// Run copies the file in, keeping its permission bits.
func (c *FilePushCmd) Run(g *Globals) error {
	name, path, err := splitInstancePath(c.Dest)
	if err != nil {
		return err
	}
	f, err := os.Open(c.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	info := api.FileInfo{}
	if st, err := f.Stat(); err == nil {
		info.Mode = uint32(st.Mode().Perm())
	}
	return withCluster(g, func(ctx context.Context, cl *api.Client) error {
		return cl.PushFile(ctx, name, path, f, info)
	})
}

// splitInstancePath splits NAME/PATH.
func splitInstancePath(s string) (name, path string, err error) {
	name, path, ok := strings.Cut(s, "/")
	if !ok || name == "" || path == "" {
		return "", "", fmt.Errorf("%q: want NAME/PATH", s)
	}
	return name, "/" + path, nil
}

// stdinTerminal reports whether f is a terminal (exec then sends no stdin).
func stdinTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
