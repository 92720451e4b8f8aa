package store

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
//
// On the leader, the Syncs of an append are deferred to a round of deferredSyncs
// (leadersync.go). Segment files are synced when opened: a process that ended with
// deferred syncs pending left data that only the page cache holds.
type datasyncFS struct {
	*fs.FS
	syncs *deferredSyncs
}

// Create creates a segment file whose later Syncs are fdatasyncs.
func (d datasyncFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := d.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	return &datasyncFile{WritableFile: f, first: true, syncs: d.syncs}, nil
}

// OpenWriter opens an existing segment file (the tail, after a restart) whose Syncs are
// fdatasyncs: its name is durable since its creation's first Sync.
func (d datasyncFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := d.FS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	if err := datasync(f); err != nil {
		f.Close()
		return nil, err
	}
	return &datasyncFile{WritableFile: f, syncs: d.syncs}, nil
}

// OpenReader opens a sealed segment file, synced first (but on a file system that cannot
// sync it: a copy of a log read where it cannot be written).
func (d datasyncFS) OpenReader(dir, name string) (types.ReadableFile, error) {
	f, err := d.FS.OpenReader(dir, name)
	if err != nil {
		return nil, err
	}
	if rf, ok := f.(rawFile); ok {
		err := fdatasync(rf, filepath.Join(dir, name))
		if err != nil && !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EINVAL) {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// datasyncFile is a segment file whose Sync is fdatasync after the first, or deferred.
type datasyncFile struct {
	types.WritableFile
	first bool // the next Sync is the new file's first (raft-wal's: file and directory)
	syncs *deferredSyncs
	// dirty is set while a deferred sync is pending; syncMu orders the deferred syncs
	// with Close.
	dirty  atomic.Bool
	syncMu sync.Mutex
	closed bool
}

// rawFile is what raft-wal's *fs.File and *os.File offer to reach the descriptor without
// setting it blocking (as Fd would).
type rawFile interface {
	SyscallConn() (syscall.RawConn, error)
}

// Sync makes the appended data durable, or leaves that to the next round of deferred
// syncs while they are being deferred. raft-wal calls it from its one writer goroutine.
func (f *datasyncFile) Sync() error {
	if f.first {
		if err := f.WritableFile.Sync(); err != nil {
			return err
		}
		f.first = false
		return nil
	}
	if f.syncs != nil && f.syncs.deferring.Load() {
		f.syncs.add(f)
		return nil
	}
	return datasync(f.WritableFile)
}

// syncDeferred runs the sync deferred, if still pending.
func (f *datasyncFile) syncDeferred() error {
	if !f.dirty.Swap(false) {
		return nil
	}
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	if f.closed {
		return nil // Close synced it
	}
	return datasync(f.WritableFile)
}

// Close syncs a deferred sync still pending, then closes the file.
func (f *datasyncFile) Close() error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	var err error
	if f.dirty.Swap(false) {
		err = datasync(f.WritableFile)
	}
	f.closed = true
	return errors.Join(err, f.WritableFile.Close())
}

// datasync runs fdatasync on f's descriptor, or f's own Sync when f has none.
func datasync(f types.WritableFile) error {
	rf, ok := f.(rawFile)
	if !ok {
		return f.Sync()
	}
	return fdatasync(rf, fileName(f))
}

// fdatasync runs fdatasync on f's descriptor; name is f's for an error.
func fdatasync(rf rawFile, name string) error {
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
		return &os.PathError{Op: "fdatasync", Path: name, Err: syncErr}
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
