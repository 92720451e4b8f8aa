package verbs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"orch/nodeagent/api"
)

// Recursive copies (`file push -r`, `file pull -r`, as lxc's). The file API moves one
// regular file at a time, so the directories are made, and listed, by running mkdir and
// find in the instance; the files themselves go through the file API (resolved inside the
// instance's root). Symbolic links and special files are left out, and named on stderr.

// ErrNotLocal means a name listed inside the instance would land outside DEST.
var ErrNotLocal = errors.New("not a path below the destination")

// pushTree copies the local directory src into name's directory dir (as dir/BASE(src)
// when dir ends in /, else as dir itself).
func (c *FilePushCmd) pushTree(ctx context.Context, e *Env, cl *api.Client, src, name, dir string, mode uint32) error {
	if strings.HasSuffix(dir, "/") {
		dir += filepath.Base(filepath.Clean(src))
	}
	var dirs, files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch {
		case d.IsDir():
			dirs = append(dirs, path.Join(dir, filepath.ToSlash(rel)))
		case d.Type().IsRegular():
			files = append(files, rel)
		default:
			fmt.Fprintf(e.Stderr, "skipping %s: not a regular file or directory\n", p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := mkdirsIn(ctx, cl, name, dirs); err != nil {
		return err
	}
	for _, rel := range files {
		if err := c.pushOne(ctx, e, cl, filepath.Join(src, rel), name, path.Join(dir, filepath.ToSlash(rel)), mode); err != nil {
			return err
		}
	}
	return nil
}

// mkdirsIn creates dirs inside the instance, in one mkdir -p.
func mkdirsIn(ctx context.Context, cl *api.Client, name string, dirs []string) error {
	var out strings.Builder
	code, err := cl.Exec(ctx, name, append([]string{"mkdir", "-p", "--"}, dirs...), api.ExecOptions{}, nil, &out, &out)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s: mkdir -p: exit %d: %s", name, code, strings.TrimSpace(out.String()))
	}
	return nil
}

// pullTree copies name's directory dir to the local directory dest (as dest/BASE(dir)
// when dest exists, else as dest itself, as cp -r does).
func pullTree(ctx context.Context, e *Env, cl *api.Client, name, dir, dest string) error {
	if st, err := os.Stat(dest); err == nil && st.IsDir() {
		dest = filepath.Join(dest, path.Base(path.Clean(dir)))
	}
	dirs, err := findIn(ctx, cl, name, dir, "d")
	if err != nil {
		return err
	}
	files, err := findIn(ctx, cl, name, dir, "f")
	if err != nil {
		return err
	}
	for _, rel := range dirs {
		if err := os.MkdirAll(filepath.Join(dest, rel), 0o755); err != nil {
			return err
		}
	}
	for _, rel := range files {
		if err := pullOne(ctx, cl, name+"/"+path.Join(dir, rel), filepath.Join(dest, rel), e.Stdout); err != nil {
			return err
		}
	}
	return nil
}

// findIn lists the entries of type typ ("d" or "f") below dir inside the instance,
// relative to dir, each checked to stay below it.
func findIn(ctx context.Context, cl *api.Client, name, dir, typ string) ([]string, error) {
	var out, errb strings.Builder
	code, err := cl.Exec(ctx, name, []string{"find", dir, "-type", typ, "-print0"}, api.ExecOptions{}, nil, &out, &errb)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("%s: find %s: exit %d: %s", name, dir, code, strings.TrimSpace(errb.String()))
	}
	root := path.Clean(dir)
	var rels []string
	for _, p := range strings.Split(out.String(), "\x00") {
		if p == "" {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(path.Clean(p), root), "/")
		if rel == "" {
			rel = "."
		}
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("%s: %q: %w", name, p, ErrNotLocal)
		}
		rels = append(rels, rel)
	}
	return rels, nil
}
