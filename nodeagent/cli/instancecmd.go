package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"orch/nodeagent/api"
	"orch/output"
)

// LaunchCmd is `launch IMAGE NAME`, as `lxc launch`.
type LaunchCmd struct {
	Image    string   `arg:"" help:"Image: alias, fingerprint or REMOTE:ALIAS."`
	Name     string   `arg:"" help:"Instance name."`
	Target   string   `help:"Member to launch on (default: the one with the fewest instances)."`
	Profiles []string `short:"p" name:"profile" help:"Profile to apply (repeatable; default: default)."`
	NoStart  bool     `help:"Create without starting."`
}

// Run launches the instance.
func (c *LaunchCmd) Run(g *Globals) error {
	in, err := g.client().Launch(context.Background(), api.InstancesPost{Name: c.Name, Source: c.Image, Profiles: c.Profiles, NoStart: c.NoStart}, c.Target)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Launched %s on %s\n", in.Name, in.Location)
	return nil
}

// ListCmd is `list`: every instance of the cluster with its NODE.
type ListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the instances.
func (c *ListCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	is, err := g.client().Instances(context.Background())
	if err != nil {
		return err
	}
	return output.Render(g.Stdout, c.Format, is, func() ([]string, [][]string) { return output.InstanceTable(is) })
}

// StartCmd starts instances.
type StartCmd struct {
	Names []string `arg:""`
}

// Run starts each instance.
func (c *StartCmd) Run(g *Globals) error { return setState(g, c.Names, "start", false) }

// StopCmd stops instances.
type StopCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Kill instead of a clean shutdown."`
}

// Run stops each instance.
func (c *StopCmd) Run(g *Globals) error { return setState(g, c.Names, "stop", c.Force) }

// RestartCmd restarts instances.
type RestartCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Kill instead of a clean shutdown."`
}

// Run restarts each instance.
func (c *RestartCmd) Run(g *Globals) error { return setState(g, c.Names, "restart", c.Force) }

func setState(g *Globals, names []string, action string, force bool) error {
	for _, n := range names {
		if err := g.client().SetInstanceState(context.Background(), n, api.InstanceStatePut{Action: action, Force: force}); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return nil
}

// DeleteCmd deletes instances.
type DeleteCmd struct {
	Names []string `arg:""`
	Force bool     `short:"f" help:"Stop running instances first."`
}

// Run deletes each instance.
func (c *DeleteCmd) Run(g *Globals) error {
	for _, n := range c.Names {
		if err := g.client().DeleteInstance(context.Background(), n, c.Force); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return nil
}

// ExecCmd is `exec NAME -- CMD...`: output and exit code passed through, stdin streamed.
type ExecCmd struct {
	Name    string   `arg:""`
	Command []string `arg:"" passthrough:"" help:"Command and arguments (after --)."`
	Cwd     string   `help:"Working directory inside the instance."`
	Env     []string `help:"Extra KEY=VALUE variables (repeatable)."`
	NoStdin bool     `short:"n" help:"Do not send stdin."`
}

// Run runs the command and ends with its exit code.
func (c *ExecCmd) Run(g *Globals) error {
	argv := c.Command
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return errors.New("no command given (exec NAME -- CMD...)")
	}
	var stdin io.Reader
	if !c.NoStdin && !stdinIsTerminal(g.Stdin) {
		stdin = g.Stdin
	}
	code, err := g.client().Exec(context.Background(), c.Name, argv, api.ExecOptions{Cwd: c.Cwd, Env: c.Env}, stdin, g.Stdout, g.Stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// FileCmd groups file push and pull.
type FileCmd struct {
	Pull FilePullCmd `cmd:"" help:"Copy a file out of an instance: NAME/PATH DEST."`
	Push FilePushCmd `cmd:"" help:"Copy a file into an instance: SRC NAME/PATH."`
}

// FilePullCmd is `file pull NAME/PATH DEST` (DEST may be a directory or - for stdout).
type FilePullCmd struct {
	Source string `arg:"" help:"NAME/PATH inside the instance."`
	Dest   string `arg:"" help:"Local file, directory, or - for stdout."`
}

// Run copies the file out.
func (c *FilePullCmd) Run(g *Globals) error {
	name, path, err := splitInstancePath(c.Source)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if c.Dest == "-" {
		_, err := g.client().PullFile(ctx, name, path, g.Stdout)
		return err
	}
	dest := c.Dest
	if st, err := os.Stat(dest); err == nil && st.IsDir() {
		dest = filepath.Join(dest, filepath.Base(path))
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".pull-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	info, err := g.client().PullFile(ctx, name, path, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if info.Mode != 0 {
		_ = os.Chmod(tmp.Name(), fs.FileMode(info.Mode).Perm())
	}
	return os.Rename(tmp.Name(), dest)
}

// FilePushCmd is `file push SRC NAME/PATH` (SRC - reads stdin).
type FilePushCmd struct {
	Source string `arg:"" help:"Local file, or - for stdin."`
	Dest   string `arg:"" help:"NAME/PATH inside the instance (a trailing / keeps the source's name)."`
	Mode   string `help:"Octal mode (default: the source's, or 0644)."`
	UID    int    `help:"Owner inside the instance."`
	GID    int    `help:"Group inside the instance."`
}

// Run copies the file in.
func (c *FilePushCmd) Run(g *Globals) error {
	name, path, err := splitInstancePath(c.Dest)
	if err != nil {
		return err
	}
	info := api.FileInfo{UID: c.UID, GID: c.GID}
	var r io.Reader = g.Stdin
	if c.Source != "-" {
		f, err := os.Open(c.Source)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			info.Mode = uint32(st.Mode().Perm())
		}
		if strings.HasSuffix(path, "/") {
			path += filepath.Base(c.Source)
		}
		r = f
	}
	if c.Mode != "" {
		var m uint32
		if _, err := fmt.Sscanf(c.Mode, "%o", &m); err != nil {
			return fmt.Errorf("--mode %q: not an octal mode", c.Mode)
		}
		info.Mode = m
	}
	return g.client().PushFile(context.Background(), name, path, r, info)
}

// splitInstancePath splits NAME/PATH.
func splitInstancePath(s string) (name, path string, err error) {
	name, path, ok := strings.Cut(s, "/")
	if !ok || name == "" || path == "" {
		return "", "", fmt.Errorf("%q: want NAME/PATH", s)
	}
	return name, "/" + path, nil
}
