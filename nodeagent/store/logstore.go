package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
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

// openWAL opens raft-wal in dir/raft: the log store we use (DESIGN.md has the
// numbers against bolt).
func openWAL(cfg Config, log hclog.Logger) (logStore, error) {
	path := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("creating raft log dir: %w", err)
	}
	meta := &metadb.BoltMetaDB{}
	size := 64 << 20 // raft-wal's default
	if cfg.walSegmentSize > 0 {
		size = cfg.walSegmentSize
	}
	w, err := wal.Open(path, wal.WithLogger(log.Named("wal")), wal.WithMetaStore(meta), wal.WithSegmentSize(size))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening raft log %s: %w", path, err), meta.Close())
	}
	return walStore{WAL: w, meta: meta}, nil
}

// walStore closes the WAL's meta database too: WAL.Close leaves it open, and
// its file lock would block the next Open in the same process.
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

// Close implements io.Closer.
func (w walStore) Close() error {
	return errors.Join(w.WAL.Close(), w.meta.Close())
}

// openBolt opens raft-boltdb/v2 in dir/raft.db; kept for the benchmark that
// compares it with raft-wal.
func openBolt(cfg Config, _ hclog.Logger) (logStore, error) {
	path := filepath.Join(cfg.Dir, "raft.db")
	b, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		return nil, fmt.Errorf("opening raft log %s: %w", path, err)
	}
	return b, nil
}
