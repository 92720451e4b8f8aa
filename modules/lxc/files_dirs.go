package lxc

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"

	"golang.org/x/sys/unix"
)

// This file is what LXD's file API needs besides regular files: opening a directory or a
// file and telling which it is, listing a directory, making one, and removing an entry,
// every path resolved inside the container's rootfs (OpenInRoot).

// Entry is a file or directory opened inside a container.
type Entry struct {
	// File is open for reading; the caller closes it.
	File *os.File
	// Info describes it (Size is 0 for a directory).
	Info FileInfo
	// Dir is true for a directory.
	Dir bool
}

// FileOpenEntry opens the regular file or directory at path inside the container.
func (m *Manager) FileOpenEntry(name, p string) (Entry, error) {
	rootfs, err := m.Rootfs(name)
	if err != nil {
		return Entry{}, err
	}
	e, err := OpenEntryInRoot(rootfs, p)
	if err != nil {
		return Entry{}, fmt.Errorf("%s: %w", name, err)
	}
	return e, nil
}

// OpenEntryInRoot opens a regular file or a directory below root (see OpenInRoot).
func OpenEntryInRoot(root, p string) (Entry, error) {
	f, err := OpenInRoot(root, p, unix.O_RDONLY, 0)
	if err != nil {
		return Entry{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return Entry{}, err
	}
	info := FileInfo{Mode: fs.FileMode(st.Mode & 0o7777).Perm(), UID: int(st.Uid), GID: int(st.Gid)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return Entry{File: f, Info: info, Dir: true}, nil
	case unix.S_IFREG:
		if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
			f.Close()
			return Entry{}, err
		}
		info.Size = st.Size
		return Entry{File: f, Info: info}, nil
	}
	f.Close()
	return Entry{}, fmt.Errorf("%s: not a regular file nor a directory", p)
}

// Names lists a directory entry's names, sorted.
func (e Entry) Names() ([]string, error) {
	names, err := e.File.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// FileMkdir makes the directory p inside the container with mode and owner; an existing
// directory is left as it is (only its mode and owner are set), as LXD's push of a directory.
func (m *Manager) FileMkdir(name, p string, opts PushOptions) error {
	rootfs, err := m.Rootfs(name)
	if err != nil {
		return err
	}
	if err := MkdirInRoot(rootfs, p, opts); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// MkdirInRoot makes the directory p below root (its parent must exist) and sets its mode
// (0755 when opts.Mode is 0) and owner.
func MkdirInRoot(root, p string, opts PushOptions) error {
	mode := opts.Mode.Perm()
	if mode == 0 {
		mode = 0o755
	}
	rel, err := insidePath(p)
	if err != nil {
		return err
	}
	if rel == "." {
		return nil // the root exists
	}
	parent, err := OpenInRoot(root, path.Dir(rel), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer parent.Close()
	base := path.Base(rel)
	if err := unix.Mkdirat(int(parent.Fd()), base, uint32(mode)); err != nil && err != unix.EEXIST {
		return &fs.PathError{Op: "mkdir", Path: p, Err: err}
	}
	d, err := OpenInRoot(root, p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Chown(opts.UID, opts.GID); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return d.Chmod(mode)
}

// FileRemove removes the file or empty directory p inside the container.
func (m *Manager) FileRemove(name, p string) error {
	rootfs, err := m.Rootfs(name)
	if err != nil {
		return err
	}
	if err := RemoveInRoot(rootfs, p); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// RemoveInRoot removes the file or empty directory p below root (never root itself).
func RemoveInRoot(root, p string) error {
	clean, err := insidePath(p)
	if err != nil {
		return err
	}
	if clean == "." {
		return fmt.Errorf("%q: %w", p, fs.ErrInvalid)
	}
	parent, err := OpenInRoot(root, path.Dir(clean), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer parent.Close()
	err = unix.Unlinkat(int(parent.Fd()), path.Base(clean), 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(int(parent.Fd()), path.Base(clean), unix.AT_REMOVEDIR)
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: p, Err: err}
	}
	return nil
}
