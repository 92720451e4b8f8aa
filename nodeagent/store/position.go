package store

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
)

// ErrLogBusy is returned by Inspect when another process (the daemon) holds the raft log.
var ErrLogBusy = errors.New("the raft log is in use by another process (is the daemon running?)")

// Position is where a member's replica stands: the last entry of its raft log (which
// may hold entries it has not yet learnt are committed) and the last entry applied to its
// database (known committed). Recovery must start from the member with the newest log,
// not the newest applied entry: a follower learns that an entry is committed only with
// the next replication message, so it can hold an acknowledged write that it has not
// applied yet.
type Position struct {
	// LastLogIndex and LastLogTerm are the last entry of the raft log (or of the newest
	// snapshot when the log holds nothing after it).
	LastLogIndex, LastLogTerm uint64
	// AppliedIndex and AppliedTerm are the last entry applied to the database.
	AppliedIndex, AppliedTerm uint64
}

// Unapplied is how many log entries lie beyond the applied (known committed) index.
func (p Position) Unapplied() uint64 {
	if p.LastLogIndex <= p.AppliedIndex {
		return 0
	}
	return p.LastLogIndex - p.AppliedIndex
}

// Position reads the running store's position from its log and database.
func (s *Store) Position() (Position, error) {
	if err := s.checkOpen(); err != nil {
		return Position{}, err
	}
	applied, _, _ := s.fsm.state()
	p := Position{AppliedIndex: applied.index, AppliedTerm: applied.term}
	var err error
	p.LastLogIndex, p.LastLogTerm, err = lastEntry(s.logs, s.cfg.Dir)
	return p, err
}

// lastEntry is the last entry of the log, or the newest snapshot's when the log is empty
// or ends below it (compacted).
func lastEntry(logs raft.LogStore, dir string) (index, term uint64, err error) {
	last, err := logs.LastIndex()
	if err != nil {
		return 0, 0, fmt.Errorf("reading the last raft log index in %s: %w", dir, err)
	}
	if last > 0 {
		var l raft.Log
		if err := logs.GetLog(last, &l); err != nil {
			return 0, 0, fmt.Errorf("reading raft log entry %d in %s: %w", last, dir, err)
		}
		index, term = l.Index, l.Term
	}
	si, st, err := newestSnapshotMeta(dir)
	if err != nil {
		return 0, 0, err
	}
	if si > index {
		index, term = si, st
	}
	return index, term, nil
}

// newestSnapshotMeta reads the index and term of the newest snapshot in dir/snapshots
// from its meta.json, without opening the snapshot store (which writes a probe file).
func newestSnapshotMeta(dir string) (index, term uint64, err error) {
	entries, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("listing snapshots in %s: %w", dir, err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, "snapshots", e.Name(), "meta.json"))
		if err != nil {
			continue // a snapshot being written (.tmp) or not a snapshot
		}
		var m raft.SnapshotMeta
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m.Index > index {
			index, term = m.Index, m.Term
		}
	}
	return index, term, nil
}

// Inspect reads the position of a stopped member's store in dir without changing it:
// the applied position from a read-only database connection, the last log entry from a
// copy of the raft log (opening raft-wal in place may rewrite its tail). It fails with
// ErrLogBusy when a running daemon holds the log.
func Inspect(dir string) (Position, error) {
	var p Position
	var err error
	if p.LastLogIndex, p.LastLogTerm, err = inspectLog(dir); err != nil {
		return p, err
	}
	p.AppliedIndex, p.AppliedTerm, err = readApplied(dir)
	return p, err
}

// readApplied reads the applied position recorded in dir's database. The connection only
// queries, but is not read-only: a read-only one cannot rebuild the WAL index of a
// database whose daemon was killed, and would read the main file without the WAL's last
// transactions.
func readApplied(dir string) (index, term uint64, err error) {
	path := filepath.Join(dir, dbFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000&_query_only=true")
	if err != nil {
		return 0, 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	var i, t int64
	err = db.QueryRow(`SELECT idx, term FROM `+appliedTable+` WHERE id = 1`).Scan(&i, &t)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading the applied position in %s: %w", path, err)
	}
	return uint64(i), uint64(t), nil
}

// inspectLog copies dir/raft aside and reads the last entry from the copy.
func inspectLog(dir string) (index, term uint64, err error) {
	src := filepath.Join(dir, "raft")
	if _, err := os.Stat(filepath.Join(src, metadb.FileName)); errors.Is(err, fs.ErrNotExist) {
		return newestSnapshotMeta(dir)
	}
	if err := checkLogFree(filepath.Join(src, metadb.FileName)); err != nil {
		return 0, 0, err
	}
	tmp, err := os.MkdirTemp(dir, ".inspect-") // beside the log, so that sealed segments can be hard links
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	if err := copyDir(src, filepath.Join(tmp, "raft")); err != nil {
		return 0, 0, fmt.Errorf("copying the raft log %s: %w", src, err)
	}
	logs, err := openWAL(Config{Dir: tmp}, hclog.NewNullLogger())
	if err != nil {
		return 0, 0, err
	}
	defer logs.Close()
	index, term, err = lastEntry(logs, tmp)
	if err != nil {
		return 0, 0, err
	}
	si, st, err := newestSnapshotMeta(dir)
	if err == nil && si > index {
		index, term = si, st
	}
	return index, term, err
}

// checkLogFree fails with ErrLogBusy when another process holds raft-wal's meta database
// (bolt takes an exclusive file lock while it is open).
func checkLogFree(path string) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("%s: %w", path, ErrLogBusy)
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	return db.Close()
}

// copyDir copies raft-wal's directory src into a new directory dst. Sealed segments are
// never written again, so they are hard-linked when the filesystem allows; the meta
// database and the tail segment (the newest, which opening recovers and may rewrite) are
// copied.
func copyDir(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	tail := ""
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".wal") {
			tail = e.Name() // names start with the zero-padded base index: the last is the tail
		}
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if strings.HasSuffix(e.Name(), ".wal") && e.Name() != tail && os.Link(from, to) == nil {
			continue
		}
		if err := copyRegular(from, to); err != nil {
			return err
		}
	}
	return nil
}

// CopyTree copies a directory tree of regular files (an agent's database directory, as a
// backup before a recovery rewrites it) to dst; other kinds of file are skipped.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if de.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !de.Type().IsRegular() {
			return nil
		}
		return copyRegular(path, target)
	})
}

func copyRegular(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
