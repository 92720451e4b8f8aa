package lxc

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// FileInfo describes a file inside a container.
type FileInfo struct {
	// Size in bytes.
	Size int64 `json:"size"`
	// Mode holds the permission bits (no type bits: only regular files are transferred).
	Mode fs.FileMode `json:"mode"`
	// UID of the owner as the container sees it.
	UID int `json:"uid"`
	// GID of the group as the container sees it.
	GID int `json:"gid"`
}

// PushOptions are the optional parts of FilePush.
type PushOptions struct {
	// Mode of the file; 0 means 0644.
	Mode fs.FileMode
	// UID of the file's owner.
	UID int
	// GID of the file's group.
	GID int
	// Append adds to the end of an existing file instead of replacing its content.
	Append bool
}

// FilePull copies the regular file at path (inside the container's rootfs) to w.
func (m *Manager) FilePull(name, path string, w io.Writer) (FileInfo, error) {
	f, err := m.openInRoot(name, path, unix.O_RDONLY, 0)
	if err != nil {
		return FileInfo{}, err
	}
	defer f.Close()
	info, err := regular(f)
	if err != nil {
		return FileInfo{}, fmt.Errorf("%s:%s: %w", name, path, err)
	}
	if _, err := io.Copy(w, f); err != nil {
		return info, fmt.Errorf("%s:%s: reading: %w", name, path, err)
	}
	return info, nil
}

// FilePush writes r to the regular file at path (inside the container's rootfs), creating
// or truncating it; its parent directory must exist.
func (m *Manager) FilePush(name, path string, r io.Reader, opts PushOptions) error {
	mode := opts.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC
	if opts.Append {
		flags = unix.O_WRONLY | unix.O_CREAT | unix.O_APPEND
	}
	f, err := m.openInRoot(name, path, flags, uint32(mode))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := regular(f); err != nil {
		return fmt.Errorf("%s:%s: %w", name, path, err)
	}
	if err := f.Chown(opts.UID, opts.GID); err != nil {
		return fmt.Errorf("%s:%s: %w", name, path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("%s:%s: %w", name, path, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("%s:%s: writing: %w", name, path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s:%s: %w", name, path, err)
	}
	return nil
}

// openInRoot opens path inside the container's rootfs. A path whose ".." elements climb
// above "/" is refused; everything else, symlinks included, is resolved by the kernel
// with the rootfs as "/" (openat2 RESOLVE_IN_ROOT), so nothing outside it can be reached.
func (m *Manager) openInRoot(name, path string, flags int, mode uint32) (*os.File, error) {
	rootfs, err := m.Rootfs(name)
	if err != nil {
		return nil, err
	}
	f, err := OpenInRoot(rootfs, path, flags, mode)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// OpenInRoot opens path (absolute or relative, as seen from inside) below root with the
// kernel resolving every element, symlinks included, as if root were "/". Paths whose ".."
// climb above the root are refused with ErrPathEscapes. Non-regular files are opened
// without blocking (O_NONBLOCK) so a FIFO cannot hang the caller.
func OpenInRoot(root, path string, flags int, mode uint32) (*os.File, error) {
	rel, err := insidePath(path)
	if err != nil {
		return nil, err
	}
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", root, err)
	}
	defer unix.Close(rootFD)
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK),
		Mode:    uint64(mode),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(rootFD, rel, &how)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// insidePath returns path relative to the container's "/", refusing ".." above it.
func insidePath(path string) (string, error) {
	if path == "" || strings.ContainsRune(path, 0) {
		return "", fmt.Errorf("%q: %w", path, fs.ErrInvalid)
	}
	depth := 0
	var elems []string
	for _, e := range strings.Split(path, "/") {
		switch e {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("%q: %w", path, ErrPathEscapes)
			}
			elems = elems[:len(elems)-1]
		default:
			depth++
			elems = append(elems, e)
		}
	}
	if len(elems) == 0 {
		return ".", nil
	}
	return strings.Join(elems, "/"), nil
}

// regular checks that f is a regular file and returns its description.
func regular(f *os.File) (FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return FileInfo{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return FileInfo{}, fmt.Errorf("not a regular file")
	}
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Size: st.Size, Mode: fs.FileMode(st.Mode & 0o7777).Perm(), UID: int(st.Uid), GID: int(st.Gid)}, nil
}

// FileOpen opens the regular file at path inside the container's rootfs for reading (see
// OpenInRoot) and describes it; the caller closes it.
func (m *Manager) FileOpen(name, path string) (*os.File, FileInfo, error) {
	f, err := m.openInRoot(name, path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, FileInfo{}, err
	}
	info, err := regular(f)
	if err != nil {
		f.Close()
		return nil, FileInfo{}, fmt.Errorf("%s:%s: %w", name, path, err)
	}
	return f, info, nil
}
