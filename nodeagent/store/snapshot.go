package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	"github.com/mattn/go-sqlite3"
)

// restoreFile is the temporary copy of a snapshot being restored, in Dir.
const restoreFile = "global.db.restore"

// Snapshot implements raft.FSM. It serializes the database into memory here,
// on the FSM goroutine, so the bytes match the applied position exactly;
// Persist, which runs concurrently with Apply, only writes those bytes.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if _, _, broken := f.state(); broken != nil {
		return nil, broken
	}
	var data []byte
	err := f.conn.Raw(func(dc any) error {
		var err error
		data, err = dc.(*sqlite3.SQLiteConn).Serialize("main")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("serializing the database: %w", err)
	}
	if len(data) >= 20 {
		// Mark the image as a rollback-journal database (header bytes 18-19)
		// so it opens as a plain file; the live database stays in WAL mode.
		data[18], data[19] = 1, 1
	}
	return &dbSnapshot{data: data}, nil
}

// dbSnapshot is a serialized database image waiting to be persisted.
type dbSnapshot struct{ data []byte }

// Persist implements raft.FSMSnapshot.
func (s *dbSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("writing snapshot %s: %w", sink.ID(), err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *dbSnapshot) Release() { s.data = nil }

// restoreDB copies the database image read from rc into a temporary file in
// dir and from there into the live database with SQLite's backup API.
func restoreDB(dest *sql.Conn, dir string, rc io.Reader) error {
	tmp := filepath.Join(dir, restoreFile)
	removeDBFiles(tmp)
	defer removeDBFiles(tmp)
	if err := writeFile(tmp, rc); err != nil {
		return err
	}
	src, err := sql.Open("sqlite3", "file:"+tmp)
	if err != nil {
		return err
	}
	defer src.Close()
	srcConn, err := src.Conn(context.Background())
	if err != nil {
		return fmt.Errorf("opening %s: %w", tmp, err)
	}
	defer srcConn.Close()
	return srcConn.Raw(func(s any) error {
		return dest.Raw(func(d any) error {
			return backup(d.(*sqlite3.SQLiteConn), s.(*sqlite3.SQLiteConn))
		})
	})
}

// backup copies every page of src's main database into dst's.
func backup(dst, src *sqlite3.SQLiteConn) error {
	bk, err := dst.Backup("main", src, "main")
	if err != nil {
		return fmt.Errorf("starting backup: %w", err)
	}
	done, err := bk.Step(-1)
	ferr := bk.Finish()
	if err == nil && !done {
		err = errors.New("backup did not complete")
	}
	return errors.Join(err, ferr)
}

// writeFile copies r into a new file at path.
func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}

// removeDBFiles removes a database file and its -wal, -shm and -journal files.
func removeDBFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + suffix)
	}
}

// restoreNewestSnapshot brings a database that is behind the newest snapshot
// (lost, corrupt, deleted) up to that snapshot, because raft starts with
// NoSnapshotRestoreOnStart and replays only the entries after the snapshot.
func restoreNewestSnapshot(f *fsm, snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	newest := metas[0]
	cur, _, _ := f.state()
	if cur.index >= newest.Index {
		return nil
	}
	f.log.Info("database is behind the newest snapshot; restoring it",
		"db_index", cur.index, "snapshot", newest.ID, "snapshot_index", newest.Index)
	_, rc, err := snaps.Open(newest.ID)
	if err != nil {
		return fmt.Errorf("opening snapshot %s: %w", newest.ID, err)
	}
	if err := f.Restore(rc); err != nil {
		return fmt.Errorf("snapshot %s: %w", newest.ID, err)
	}
	return f.forceApplied(position{newest.Index, newest.Term})
}

// forceApplied records p as the applied position outside raft, for a database
// whose content is known to reflect every entry up to p (a freshly restored
// snapshot: the entries between its last command and its index are no-ops).
func (f *fsm) forceApplied(p position) error {
	if err := f.writeApplied(p); err != nil {
		return fmt.Errorf("recording applied index %d: %w", p.index, err)
	}
	f.setApplied(p)
	return nil
}
