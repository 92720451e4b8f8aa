package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mattn/go-sqlite3"
)

// dbFile is the global database's file name inside Config.Dir.
const dbFile = "global.db"

// appliedTable holds the index and term of the last log entry applied to the
// database, updated in the same transaction as the entry itself.
const appliedTable = "_raft_applied"

// writerDSN opens the FSM's single writer connection. WAL lets the read pool
// run beside the writer; synchronous=NORMAL skips the fsync per commit because
// the raft log is the durable source of truth (see DESIGN.md). Every connection
// keeps its last prepared statements (stmtCache): the FSM applies the same few
// statements over and over, and SQLite's prepare was a third of applying one.
func writerDSN(path string) string {
	return "file:" + path + "?_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=on&_busy_timeout=5000&_txlock=immediate&" + stmtCache
}

// readerDSN opens the read-only pool behind DB().
func readerDSN(path string) string {
	return "file:" + path + "?mode=ro&_foreign_keys=on&_busy_timeout=5000&_query_only=true&" + stmtCache
}

// stmtCache is how many prepared statements each connection keeps (go-sqlite3's cache,
// keyed by the SQL text; a statement whose schema changed is prepared again by SQLite).
const stmtCache = "_stmt_cache_size=32"

// openWriter opens the single writer connection and makes sure the applied
// table exists.
func openWriter(path string) (*sql.DB, *sql.Conn, error) {
	db, err := sql.Open("sqlite3", writerDSN(path))
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(context.Background())
	if err == nil {
		err = initWriter(conn)
	}
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		_ = db.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return db, conn, nil
}

// initWriter checks the file's integrity and creates the applied table.
func initWriter(conn *sql.Conn) error {
	ctx := context.Background()
	var res string
	if err := conn.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("quick_check: %s: %w", res, sqlite3.ErrCorrupt)
	}
	_, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+appliedTable+` (
		id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL);
		INSERT OR IGNORE INTO `+appliedTable+` (id, idx, term) VALUES (1, 0, 0)`)
	return err
}

// openWriterOrRebuild opens the database; when the file is unreadable or
// corrupt it is moved aside (global.db.corrupt-N) and a fresh one is created,
// which Open then fills from the newest snapshot and the log.
func openWriterOrRebuild(dir string, log *slog.Logger) (*sql.DB, *sql.Conn, error) {
	path := filepath.Join(dir, dbFile)
	db, conn, err := openWriter(path)
	if err == nil {
		return db, conn, nil
	}
	aside, merr := moveAside(path)
	if merr != nil {
		return nil, nil, errors.Join(err, merr)
	}
	log.Warn("global database unreadable, moved aside; rebuilding from snapshot and log",
		"path", path, "moved_to", aside, "error", err)
	return openWriter(path)
}

// moveAside renames path and its -wal/-shm files to the first free
// path.corrupt-N name and returns it.
func moveAside(path string) (string, error) {
	for n := 1; ; n++ {
		aside := path + ".corrupt-" + strconv.Itoa(n)
		if _, err := os.Stat(aside); err == nil {
			continue
		}
		for _, suffix := range []string{"", "-wal", "-shm"} {
			err := os.Rename(path+suffix, aside+suffix)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("moving %s aside: %w", path+suffix, err)
			}
		}
		return aside, nil
	}
}

// openReader opens the read-only pool on the local replica.
func openReader(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", readerDSN(path))
	if err != nil {
		return nil, fmt.Errorf("opening read pool on %s: %w", path, err)
	}
	db.SetMaxIdleConns(4)
	return db, nil
}

// isDeterministicErr reports whether a statement error would happen the same
// way on every replica (bad SQL, constraint violation, type mismatch); other
// SQLite errors (I/O, disk full, out of memory, busy) are local accidents.
func isDeterministicErr(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return true // driver-level argument errors depend only on the statement
	}
	switch se.Code {
	case sqlite3.ErrError, sqlite3.ErrConstraint, sqlite3.ErrMismatch,
		sqlite3.ErrRange, sqlite3.ErrTooBig, sqlite3.ErrAuth:
		return true
	}
	return false
}
