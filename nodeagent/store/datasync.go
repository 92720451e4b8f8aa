package store

import (
	"os"
	"syscall"

	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/types"
	"golang.org/x/sys/unix"
)

// datasyncFS is raft-wal's file system with fdatasync in place of fsync for a segment
// file's appends after its first: a segment is preallocated whole when created, so an
// append changes its data and, when it writes into a block for the first time, the
// extent that maps it (which fdatasync writes too, being needed to read the data back),
// never the file's size; fsync also committed the filesystem journal for the new
// modification time on every append. The first Sync of a new file stays raft-wal's (fsync
// of the file and of its directory, so the file's name survives a crash).
type datasyncFS struct{ *fs.FS }

// Create creates a segment file whose later Syncs are fdatasyncs.
func (d datasyncFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := d.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	return &datasyncFile{WritableFile: f, first: true}, nil
}

// OpenWriter opens an existing segment file (the tail, after a restart) whose Syncs are
// fdatasyncs: its name is durable since its creation's first Sync.
func (d datasyncFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := d.FS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	return &datasyncFile{WritableFile: f}, nil
}

// datasyncFile is a segment file whose Sync is fdatasync after the first.
type datasyncFile struct {
	types.WritableFile
	first bool // the next Sync is the new file's first (raft-wal's: file and directory)
}

// rawFile is what raft-wal's *fs.File and *os.File offer to reach the descriptor without
// setting it blocking (as Fd would).
type rawFile interface {
	SyscallConn() (syscall.RawConn, error)
}

// Sync makes the appended data durable. raft-wal calls it from its one writer goroutine.
func (f *datasyncFile) Sync() error {
	if f.first {
		if err := f.WritableFile.Sync(); err != nil {
			return err
		}
		f.first = false
		return nil
	}
	return datasync(f.WritableFile)
}

// datasync runs fdatasync on f's descriptor, or f's own Sync when f has none.
func datasync(f types.WritableFile) error {
	rf, ok := f.(rawFile)
	if !ok {
		return f.Sync()
	}
	rc, err := rf.SyscallConn()
	if err != nil {
		return err
	}
	var syncErr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if syncErr = unix.Fdatasync(int(fd)); syncErr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if syncErr != nil {
		return &os.PathError{Op: "fdatasync", Path: fileName(f), Err: syncErr}
	}
	return nil
}

// fileName is f's name for an error, when it has one.
func fileName(f types.WritableFile) string {
	if n, ok := f.(interface{ Name() string }); ok {
		return n.Name()
	}
	return "raft log segment"
}
