package verbs

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"orch/internal/atomicfile"
	"orch/nodeagent/api"
)

// FileCmd is `file`: copies into and out of instances, with `lxc file`'s word orders.
type FileCmd struct {
	Pull FilePullCmd `cmd:"" help:"Copy files out of an instance: NAME/PATH... [DEST] (no DEST, or -: stdout)."`
	Push FilePushCmd `cmd:"" help:"Copy local files into an instance: SRC... NAME/PATH."`
}

// FilePullCmd is `file pull NAME/PATH... DEST`, as `lxc file pull`; with one source and no
// DEST (or DEST -) the file goes to stdout. Several sources need DEST to be a directory.
type FilePullCmd struct {
	Args       []string `arg:"" name:"source-and-dest" help:"NAME/PATH inside the instance (repeatable), then a local file, directory, or - for stdout."`
	CreateDirs bool     `short:"p" help:"Create DEST's missing directories."`
	Recursive  bool     `short:"r" help:"Copy directories and what they hold (regular files)."`
}

// Run copies the files out.
func (c *FilePullCmd) Run(e *Env) error {
	srcs, dest := c.Args, "-"
	if len(c.Args) > 1 {
		srcs, dest = c.Args[:len(c.Args)-1], c.Args[len(c.Args)-1]
	}
	if c.CreateDirs && dest != "-" {
		dir := dest
		if len(srcs) == 1 && !strings.HasSuffix(dest, "/") {
			dir = filepath.Dir(dest)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if len(srcs) > 1 {
		if st, err := os.Stat(dest); err != nil || !st.IsDir() {
			return fmt.Errorf("%s: not a directory, and there are %d files to pull", dest, len(srcs))
		}
	}
	if c.Recursive && dest == "-" {
		return fmt.Errorf("-r needs a local DEST directory, not stdout")
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		for _, src := range srcs {
			if err := c.pull(ctx, e, cl, src, dest); err != nil {
				return err
			}
		}
		return nil
	})
}

// pull copies one source: a tree with -r, else a file.
func (c *FilePullCmd) pull(ctx context.Context, e *Env, cl *api.Client, src, dest string) error {
	if !c.Recursive {
		return pullOne(ctx, cl, src, dest, e.Stdout)
	}
	name, p, err := splitInstancePath(src)
	if err != nil {
		return err
	}
	return pullTree(ctx, e, cl, name, p, dest)
}

// pullOne copies NAME/PATH to dest (a file, a directory, or - for w), replacing dest
// only once the whole file arrived (atomically and durably, internal/atomicfile), with the
// instance file's mode, else 0600.
func pullOne(ctx context.Context, cl *api.Client, src, dest string, w io.Writer) error {
	name, p, err := splitInstancePath(src)
	if err != nil {
		return err
	}
	if dest == "-" {
		_, err := cl.PullFile(ctx, name, p, w)
		return err
	}
	if st, err := os.Stat(dest); err == nil && st.IsDir() {
		dest = filepath.Join(dest, path.Base(p))
	}
	f, err := atomicfile.Create(dest, 0o600)
	if err != nil {
		return err
	}
	defer f.Abort()
	info, err := cl.PullFile(ctx, name, p, f)
	if err != nil {
		return err
	}
	if info.Mode != 0 {
		_ = f.Chmod(fs.FileMode(info.Mode).Perm()) // best effort, as before: some filesystems refuse modes
	}
	return f.Commit()
}

// FilePushCmd is `file push SRC... NAME/PATH`, as `lxc file push` (SRC - reads stdin).
// Several sources, or a PATH ending in /, put each file in that directory by its name.
type FilePushCmd struct {
	Args       []string `arg:"" name:"source-and-dest" help:"Local files (or - for stdin), then NAME/PATH inside the instance."`
	CreateDirs bool     `short:"p" help:"Create the missing directories inside the instance (runs mkdir -p there)."`
	Recursive  bool     `short:"r" help:"Copy directories and what they hold (regular files; runs mkdir -p there)."`
	Mode       string   `help:"Octal mode (default: the source's, or 0644)."`
	UID        int      `help:"Owner inside the instance."`
	GID        int      `help:"Group inside the instance."`
}

// Run copies the files in.
func (c *FilePushCmd) Run(e *Env) error {
	if len(c.Args) < 2 {
		return fmt.Errorf("want SRC... NAME/PATH, got %q", c.Args)
	}
	srcs, dest := c.Args[:len(c.Args)-1], c.Args[len(c.Args)-1]
	name, p, err := splitInstancePath(dest)
	if err != nil {
		return err
	}
	if len(srcs) > 1 && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	mode, err := parseMode(c.Mode)
	if err != nil {
		return err
	}
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if c.CreateDirs {
			if err := mkdirIn(ctx, cl, name, p); err != nil {
				return err
			}
		}
		for _, src := range srcs {
			if err := c.push(ctx, e, cl, src, name, p, mode); err != nil {
				return err
			}
		}
		return nil
	})
}

// push copies one source: a directory's tree with -r, else a file.
func (c *FilePushCmd) push(ctx context.Context, e *Env, cl *api.Client, src, name, p string, mode uint32) error {
	if c.Recursive && src != "-" {
		if st, err := os.Stat(src); err == nil && st.IsDir() {
			return c.pushTree(ctx, e, cl, src, name, p, mode)
		}
	}
	return c.pushOne(ctx, e, cl, src, name, p, mode)
}

// pushOne copies src (or stdin for -) to name's p; p ending in / keeps src's name.
func (c *FilePushCmd) pushOne(ctx context.Context, e *Env, cl *api.Client, src, name, p string, mode uint32) error {
	info := api.FileInfo{UID: c.UID, GID: c.GID, Mode: mode}
	var r io.Reader = e.Stdin
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && mode == 0 {
			info.Mode = uint32(st.Mode().Perm())
		}
		if strings.HasSuffix(p, "/") {
			p += filepath.Base(src)
		}
		r = f
	} else if r == nil {
		return fmt.Errorf("-: no stdin to push")
	}
	return cl.PushFile(ctx, name, p, r, info)
}

// mkdirIn creates the directory that will hold p inside the instance.
func mkdirIn(ctx context.Context, cl *api.Client, name, p string) error {
	dir := path.Dir(p)
	if strings.HasSuffix(p, "/") {
		dir = path.Clean(p)
	}
	var out strings.Builder
	code, err := cl.Exec(ctx, name, []string{"mkdir", "-p", dir}, api.ExecOptions{}, nil, &out, &out)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s: mkdir -p %s: exit %d: %s", name, dir, code, strings.TrimSpace(out.String()))
	}
	return nil
}

// parseMode reads an octal --mode ("" is 0: the source's).
func parseMode(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	var m uint32
	if _, err := fmt.Sscanf(s, "%o", &m); err != nil {
		return 0, fmt.Errorf("--mode %q: not an octal mode", s)
	}
	return m, nil
}

// splitInstancePath splits NAME/PATH (the PATH keeps a trailing /).
func splitInstancePath(s string) (name, path string, err error) {
	name, path, ok := strings.Cut(s, "/")
	if !ok || name == "" || path == "" {
		return "", "", fmt.Errorf("%q: want NAME/PATH", s)
	}
	return name, "/" + path, nil
}
