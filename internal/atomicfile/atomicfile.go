// Package atomicfile replaces files atomically: the one way orch writes a file that must
// never be seen half-written (keys, certificates, configuration, state, downloads). A leaf:
// it imports only the standard library.
//
// A replacement goes through a temporary file in the target's directory, with a unique
// name (so concurrent writers of one path never share it), that has its final
// permission bits before the first byte is written (it is created owner-only, so a 0600
// file is never readable by others, not even for a moment); the data is written and
// fsynced, the file closed, renamed over the target, and the directory fsynced so that
// the rename survives a crash. It guarantees:
//
//   - readers of the path see either the old file or the whole new one, never a part;
//   - after a crash the path holds the old content or the whole new content, never a
//     truncated file (on filesystems that honour fsync);
//   - concurrent writers of one path do not corrupt each other: the path ends up with one
//     writer's whole content;
//   - the mode is exactly the permission bits asked for, whatever the umask;
//   - on any failure the temporary file is gone and the target is untouched, and the
//     error names the target path.
//
// The new file belongs to the writing process's user and group; the old file's owner and
// mode are not carried over (callers that want the old mode pass ExistingPerm), and a
// symbolic link at the path is replaced, not followed. Only the permission bits of a mode
// are applied (no setuid, setgid or sticky bit).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// File is a pending replacement of one path: write to it, then Commit to put it in
// place or Abort to drop it. Always defer Abort: after a Commit it does nothing. A File
// is for one goroutine; several Files (or Writes) may replace one path at once.
type File struct {
	path string
	tmp  *os.File
	done bool
}

// Create starts replacing path with a temporary file beside it whose permission bits
// are perm already.
func Create(path string, perm fs.FileMode) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPattern(filepath.Base(path)))
	if err != nil {
		return nil, fmt.Errorf("replacing %s: %w", path, err)
	}
	f := &File{path: path, tmp: tmp}
	if err := tmp.Chmod(perm.Perm()); err != nil {
		return nil, f.fail(err)
	}
	return f, nil
}

// tempPattern names the temporary files of base: hidden, after base, cut so that the
// name stays within NAME_MAX (255 bytes) once CreateTemp adds its random digits.
func tempPattern(base string) string {
	const maxBase = 200
	if len(base) > maxBase {
		base = base[:maxBase]
	}
	return "." + base + ".tmp-*"
}

// Write writes p to the temporary file.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.tmp.Write(p)
	if err != nil {
		return n, fmt.Errorf("replacing %s: %w", f.path, err)
	}
	return n, nil
}

// ReadFrom copies r into the temporary file until EOF, so that io.Copy into a File keeps
// the os.File fast paths (splice, copy_file_range).
func (f *File) ReadFrom(r io.Reader) (int64, error) {
	n, err := f.tmp.ReadFrom(r)
	if err != nil {
		return n, fmt.Errorf("replacing %s: %w", f.path, err)
	}
	return n, nil
}

// Chmod sets the permission bits the file will have, for callers that learn them only
// once the data is written.
func (f *File) Chmod(perm fs.FileMode) error {
	if err := f.tmp.Chmod(perm.Perm()); err != nil {
		return fmt.Errorf("replacing %s: %w", f.path, err)
	}
	return nil
}

// Commit syncs and closes the temporary file, renames it over the path and syncs the
// directory. On failure the temporary file is removed and the path keeps its old
// content, except when only the directory sync failed: the new file is then in place
// but may not survive a crash.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("replacing %s: %w", f.path, os.ErrClosed)
	}
	if err := f.tmp.Sync(); err != nil {
		return f.fail(err)
	}
	if err := f.tmp.Close(); err != nil {
		return f.fail(err)
	}
	if err := os.Rename(f.tmp.Name(), f.path); err != nil {
		return f.fail(err)
	}
	f.done = true
	if err := SyncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("replacing %s: %w", f.path, err)
	}
	return nil
}

// Abort drops the replacement: the temporary file is closed and removed, the path is
// untouched. It does nothing after Commit or an earlier Abort.
func (f *File) Abort() {
	if !f.done {
		_ = f.fail(nil)
	}
}

// fail removes the temporary file and returns err naming the path.
func (f *File) fail(err error) error {
	f.done = true
	_ = f.tmp.Close() // may be closed already
	if rerr := os.Remove(f.tmp.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("replacing %s: %w", f.path, err)
}

// Write replaces path with data, whose permission bits will be perm.
func Write(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// WriteFrom replaces path with what r yields until EOF, whose permission bits will be
// perm; it returns the number of bytes written. An error of r leaves path untouched.
func WriteFrom(path string, r io.Reader, perm fs.FileMode) (int64, error) {
	f, err := Create(path, perm)
	if err != nil {
		return 0, err
	}
	defer f.Abort()
	n, err := f.ReadFrom(r)
	if err != nil {
		return n, err
	}
	return n, f.Commit()
}

// ExistingPerm is the permission bits of the file at path, or def when it cannot be
// read (it does not exist): for callers whose rewrite keeps the mode the file has.
func ExistingPerm(path string, def fs.FileMode) fs.FileMode {
	if fi, err := os.Stat(path); err == nil {
		return fi.Mode().Perm()
	}
	return def
}

// SyncDir fsyncs directory dir so that the renames, creations and removals in it survive
// a crash; for callers that rename whole directories into place (Write and Commit sync
// the file's directory themselves). Filesystems that cannot sync a directory (EINVAL,
// ENOTSUP) have nothing more to offer and are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	return errors.Join(err, d.Close())
}
