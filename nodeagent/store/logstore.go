package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// logStore is raft's log and stable store in one (both raft-wal and the bolt
// store implement both).
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// logStoreOpener opens the log store in cfg.Dir.
type logStoreOpener func(cfg Config, log hclog.Logger) (logStore, error)

// walSegmentSize is the size of raft-wal's segment files, preallocated when created. Every
// truncation of the log's suffix (a follower dropping a deposed leader's uncommitted
// entries) seals the tail early and creates a new segment, and sealed segments are freed
// only when a snapshot's head truncation passes them: with raft-wal's default of 64 MiB a
// soak (a leader change every ten seconds or so) left 14 segments, 896 MiB, on a member's
// 1 GiB filesystem (TestLogTruncationsFitSmallDisk). An 8 MiB segment still holds tens of
// thousands of entries, and rotating to a new one happens off the write path.
const walSegmentSize = 8 << 20

// openWAL opens raft-wal in dir/raft: the log store we use (DESIGN.md has the
// numbers against bolt).
func openWAL(cfg Config, log hclog.Logger) (logStore, error) {
	path := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("creating raft log dir: %w", err)
	}
	size := walSegmentSize
	if cfg.walSegmentSize > 0 {
		size = cfg.walSegmentSize
	}
	w := &walStore{path: path, log: log.Named("wal"), segmentSize: size, syncs: newDeferredSyncs()}
	w.syncs.beforeRound = cfg.leaderSyncHook
	if err := w.open(); err != nil {
		return nil, errors.Join(err, w.syncs.close())
	}
	return w, nil
}

// walStore is raft-wal, reopened after a failed write. raft-wal's state on disk
// survives a failed file operation (its recovery is the one it does after a
// crash), but its state in memory does not: when creating the next segment
// fails (a full disk), the segment's ID is already committed to the meta
// database and its file left behind, and every retry in the same process fails
// with "file exists". So a failed write reopens the WAL from disk and is
// retried once on it (write), and a WAL whose retry failed too is reopened
// before the next call (TestLogStoreRecoversFromFullDisk). Close also closes the meta
// database: WAL.Close leaves it open, and its file lock would block the next
// Open in the same process.
//
// On the leader, an append of command entries leaves its fdatasync to a round run beside
// the replication (syncs; leadersync.go); every other change of the log (wmu held) first
// finishes those rounds.
type walStore struct {
	path        string
	log         hclog.Logger
	segmentSize int
	syncs       *deferredSyncs
	wmu         sync.Mutex // held by every change of the log

	mu    sync.RWMutex // held shared by every call, exclusively to reopen
	wal   *wal.WAL
	meta  *metadb.BoltMetaDB
	stale atomic.Bool // a write failed: reopen before the next call
}

// open opens the WAL and its meta database (mu held exclusively, or not shared yet).
func (w *walStore) open() error {
	meta := &metadb.BoltMetaDB{}
	l, err := wal.Open(w.path, wal.WithLogger(w.log), wal.WithMetaStore(syncedMeta{meta, w.syncs}), wal.WithSegmentSize(w.segmentSize),
		wal.WithSegmentFiler(segment.NewFiler(w.path, datasyncFS{FS: fs.New(), syncs: w.syncs})))
	if err != nil {
		return errors.Join(fmt.Errorf("opening raft log %s: %w", w.path, err), meta.Close())
	}
	last, err := l.LastIndex()
	if err != nil {
		return errors.Join(fmt.Errorf("opening raft log %s: %w", w.path, err), l.Close(), meta.Close())
	}
	w.wal, w.meta = l, meta
	w.syncs.durable.Store(last) // its segments were synced as they were opened
	return nil
}

// syncedMeta is raft-wal's meta database that first syncs the appends whose syncs are
// deferred: a segment's rotation commits its seal (where its index frame starts) to the
// meta database from raft-wal's rotation goroutine, which must not be durable before the
// frame it points to.
type syncedMeta struct {
	*metadb.BoltMetaDB
	syncs *deferredSyncs
}

// CommitState implements raft-wal's MetaStore.
func (m syncedMeta) CommitState(st types.PersistentState) error {
	if err := m.syncs.syncFiles(); err != nil {
		return err
	}
	return m.BoltMetaDB.CommitState(st)
}

// current returns the WAL to call, reopening it first after a failed write,
// and the function that ends the call.
func (w *walStore) current() (*wal.WAL, func(), error) {
	for {
		w.mu.RLock()
		if !w.stale.Load() {
			if w.wal == nil {
				w.mu.RUnlock()
				return nil, nil, fmt.Errorf("raft log %s: %w", w.path, wal.ErrClosed)
			}
			return w.wal, w.mu.RUnlock, nil
		}
		w.mu.RUnlock()
		if err := w.reopen(); err != nil {
			return nil, nil, err
		}
	}
}

// reopen closes the WAL and opens it again from disk; it stays stale when that
// fails (the next call tries again).
func (w *walStore) reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stale.Load() {
		return nil
	}
	if w.wal != nil {
		if err := errors.Join(w.wal.Close(), w.meta.Close()); err != nil {
			w.log.Warn("closing the raft log after a failed write", "error", err)
		}
		w.wal, w.meta = nil, nil
	}
	if err := w.open(); err != nil {
		return fmt.Errorf("reopening the raft log after a failed write: %w", err)
	}
	w.log.Info("reopened the raft log after a failed write")
	w.stale.Store(false)
	return nil
}

// write runs a call that changes the WAL. When it fails, the WAL is reopened from disk and
// the call retried once (again, if not nil, instead of fn): raft takes a failed write for
// one that changed nothing and keeps its own idea of the last index, but raft-wal can fail
// after its change became durable (a suffix truncation committed to the meta database
// whose new segment could not be preallocated). On the reopened WAL the retry finds the
// truncation done, or stores the batch again. When the retry fails too, the WAL stays
// stale for the next call.
func (w *walStore) write(fn, again func(*wal.WAL) error) error {
	err := w.try(fn)
	if err == nil {
		return nil
	}
	if again == nil {
		again = fn
	}
	if rerr := w.reopen(); rerr != nil {
		return errors.Join(err, rerr)
	}
	if err := w.try(again); err != nil {
		return err
	}
	w.log.Warn("a raft log write failed, then succeeded on the log reopened from disk", "error", err)
	return nil
}

// try runs fn on the current WAL and marks it stale when fn fails.
func (w *walStore) try(fn func(*wal.WAL) error) error {
	l, done, err := w.current()
	if err != nil {
		return err
	}
	defer done()
	if err := fn(l); err != nil {
		w.stale.Store(true)
		return err
	}
	return nil
}

// storeAgain stores logs on a reopened WAL that may hold part of them (durable before the
// failure): that part goes first, so that the log is what raft believes.
func storeAgain(l *wal.WAL, logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	last, err := l.LastIndex()
	if err != nil {
		return err
	}
	if first := logs[0].Index; last >= first {
		if err := l.DeleteRange(first, last); err != nil {
			return err
		}
	}
	return l.StoreLogs(logs)
}

// read runs a call that only reads the WAL.
func (w *walStore) read(fn func(*wal.WAL) error) error {
	l, done, err := w.current()
	if err != nil {
		return err
	}
	defer done()
	return fn(l)
}

// FirstIndex implements raft.LogStore.
func (w *walStore) FirstIndex() (i uint64, err error) {
	err = w.read(func(l *wal.WAL) (err error) { i, err = l.FirstIndex(); return err })
	return i, err
}

// LastIndex implements raft.LogStore.
func (w *walStore) LastIndex() (i uint64, err error) {
	err = w.read(func(l *wal.WAL) (err error) { i, err = l.LastIndex(); return err })
	return i, err
}

// GetLog implements raft.LogStore.
func (w *walStore) GetLog(index uint64, log *raft.Log) error {
	return w.read(func(l *wal.WAL) error { return l.GetLog(index, log) })
}

// StoreLog implements raft.LogStore.
func (w *walStore) StoreLog(log *raft.Log) error {
	return w.StoreLogs([]*raft.Log{log})
}

// StoreLogs implements raft.LogStore: on the leader, command entries are written with
// their fdatasync deferred (leadersync.go).
func (w *walStore) StoreLogs(logs []*raft.Log) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	store := func() error {
		return w.write(func(l *wal.WAL) error { return l.StoreLogs(logs) }, func(l *wal.WAL) error { return storeAgain(l, logs) })
	}
	if !w.syncs.mayDefer(logs) {
		return w.syncs.changeLog(store, w.LastIndex)
	}
	if err := w.syncs.failure(); err != nil {
		return err
	}
	w.syncs.deferring.Store(true)
	err := store()
	w.syncs.deferring.Store(false)
	if err != nil {
		return err
	}
	w.syncs.stored(logs[len(logs)-1].Index)
	return nil
}

// DeleteRange implements raft.LogStore.
func (w *walStore) DeleteRange(min, max uint64) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.syncs.changeLog(func() error {
		return w.write(func(l *wal.WAL) error { return l.DeleteRange(min, max) }, nil)
	}, w.LastIndex)
}

// deferred returns the rounds that make the leader's appends durable.
func (w *walStore) deferred() *deferredSyncs { return w.syncs }

// Set implements raft.StableStore.
func (w *walStore) Set(key, val []byte) error {
	return w.write(func(l *wal.WAL) error { return l.Set(key, val) }, nil)
}

// Get implements raft.StableStore.
func (w *walStore) Get(key []byte) (v []byte, err error) {
	err = w.read(func(l *wal.WAL) (err error) { v, err = l.Get(key); return err })
	return v, err
}

// SetUint64 implements raft.StableStore.
func (w *walStore) SetUint64(key []byte, val uint64) error {
	return w.write(func(l *wal.WAL) error { return l.SetUint64(key, val) }, nil)
}

// GetUint64 implements raft.StableStore.
func (w *walStore) GetUint64(key []byte) (v uint64, err error) {
	err = w.read(func(l *wal.WAL) (err error) { v, err = l.GetUint64(key); return err })
	return v, err
}

// IsMonotonic implements raft.MonotonicLogStore: raft must clear the whole log
// after installing a snapshot.
func (w *walStore) IsMonotonic() bool { return true }

// Close implements io.Closer, after a last round of the deferred syncs.
func (w *walStore) Close() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.wal == nil {
		return w.syncs.close()
	}
	err := errors.Join(w.syncs.close(), w.wal.Close(), w.meta.Close())
	w.wal, w.meta = nil, nil
	return err
}
