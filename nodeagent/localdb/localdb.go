// Package localdb is the member's node-local SQLite database: its identity and addresses,
// the raft members it last knew of, its last applied raft index and term, and the token
// operations it issued. It is read
// with the daemon stopped (`cluster list-database`, `recover-from-quorum-loss`).
//
// The config table is read on every API request (the member's addresses, its name, the
// member-local keys GET /1.0 shows) and the raft members on every request forwarded to
// the leader (where to find it), so a DB keeps both in memory: loaded on first use,
// updated by Set and SetRaftNodes after each commit. That holds because one process writes a member's
// local.db at a time: the daemon while it runs, the recovery commands only while it is
// stopped (they refuse a running daemon); a DB opened by another process while one is
// in use would not see that one's writes.
package localdb

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	_ "github.com/mattn/go-sqlite3" // SQLite driver

	"orch/nodeagent/api"
)

// Keys of the node-local config table that are not configuration keys.
const (
	KeyMemberName = "member.name"     // this member's name once initialised
	KeyClusterID  = "cluster.id"      // fingerprint of the cluster certificate once initialised
	KeyRecovered  = "recovered"       // set by recover-from-quorum-loss until the daemon marks the lost members offline
	KeyEpoch      = "cluster.epoch"   // the cluster epoch this member belongs to (JSON api.Epoch), unset for epoch 0
	KeyCutOff     = "cluster.cut_off" // why this member no longer belongs to its cluster (JSON api.CutOff)
	// KeyRaftTimings is the cluster's raft heartbeat, election and leader lease timeouts as
	// this member last applied them ("800ms 800ms 790ms"): its raft starts with them.
	KeyRaftTimings = "raft.timings"
)

// schema is one transaction: on a fresh agent (`orch up`'s every host) one commit, one
// fsync of the WAL, where the four statements were four commits.
const schema = `
BEGIN;
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raft_nodes (name TEXT PRIMARY KEY, address TEXT NOT NULL, role TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raft_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_index INTEGER NOT NULL, last_term INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, saved TEXT NOT NULL);
COMMIT;
`

// DB is the node-local database.
type DB struct {
	db *sql.DB

	mu    sync.Mutex           // serialises Set and SetRaftNodes and guards what follows
	cfg   map[string]string    // the config table, nil until first read
	gen   uint64               // bumped by every Set
	nodes []api.DatabaseMember // the raft_nodes table, nil until first read
}

// Open opens (creating) the database at path.
func Open(path string) (*DB, error) {
	// 0600, an older one included: it holds the secrets of the tokens this member issued
	// (SQLite gives its -wal and -shm files the database's mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node-local database %s: %w", path, err)
	}
	err = f.Chmod(0o600)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("node-local database %s: %w", path, err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_busy_timeout=5000&_synchronous=FULL")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("node-local database %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Get returns a config value, "" when unset.
func (d *DB) Get(key string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.loadLocked(); err != nil {
		return "", err
	}
	return d.cfg[key], nil
}

// Config returns every config row (a copy the caller may keep).
func (d *DB) Config() (map[string]string, error) {
	cfg, _, err := d.ConfigAt()
	return cfg, err
}

// ConfigAt is Config with the generation it was read at (see Generation).
func (d *DB) ConfigAt() (map[string]string, uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.loadLocked(); err != nil {
		return nil, 0, err
	}
	return maps.Clone(d.cfg), d.gen, nil
}

// Generation identifies the config table's content: every Set changes it, so that what
// is computed from the table can be cached until the next change.
func (d *DB) Generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// loadLocked reads the config table into memory once.
func (d *DB) loadLocked() error {
	if d.cfg != nil {
		return nil
	}
	rows, err := d.db.Query(`SELECT key, value FROM config`)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return err
	}
	d.cfg = out
	return nil
}

// Set writes the given keys in one transaction; an empty value deletes the key.
func (d *DB) Set(values map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.loadLocked(); err != nil {
		return err
	}
	if err := d.write(values); err != nil {
		return err
	}
	for k, v := range values {
		if v == "" {
			delete(d.cfg, k)
		} else {
			d.cfg[k] = v
		}
	}
	d.gen++
	return nil
}

// write commits values to the config table.
func (d *DB) write(values map[string]string) error {
	tx, err := d.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for k, v := range values {
		if v == "" {
			_, err = tx.Exec(`DELETE FROM config WHERE key = ?`, k)
		} else {
			_, err = tx.Exec(`INSERT INTO config(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, k, v)
		}
		if err != nil {
			return err
		}
	}
	return tx.Commit()
}

// RaftNodes returns the raft members last recorded (a copy the caller may keep).
func (d *DB) RaftNodes() ([]api.DatabaseMember, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nodes == nil {
		nodes, err := d.readRaftNodes()
		if err != nil {
			return nil, err
		}
		d.nodes = nodes
	}
	if len(d.nodes) == 0 {
		return nil, nil
	}
	return slices.Clone(d.nodes), nil
}

func (d *DB) readRaftNodes() ([]api.DatabaseMember, error) {
	rows, err := d.db.Query(`SELECT name, address, role FROM raft_nodes ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []api.DatabaseMember{}
	for rows.Next() {
		var m api.DatabaseMember
		if err := rows.Scan(&m.Name, &m.Address, &m.Role); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// SetRaftNodes replaces the recorded raft members.
func (d *DB) SetRaftNodes(nodes []api.DatabaseMember) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nodes = nil // read again after a failure
	tx, err := d.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM raft_nodes`); err != nil {
		return err
	}
	for _, n := range nodes {
		if _, err := tx.Exec(`INSERT INTO raft_nodes(name, address, role) VALUES(?, ?, ?)`, n.Name, n.Address, n.Role); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	sorted := append([]api.DatabaseMember{}, nodes...)
	slices.SortFunc(sorted, func(a, b api.DatabaseMember) int { return strings.Compare(a.Name, b.Name) })
	d.nodes = sorted
	return nil
}

// SetLastIndexTerm records the last applied raft index and term.
func (d *DB) SetLastIndexTerm(index, term uint64) error {
	_, err := d.db.Exec(`INSERT INTO raft_state(id, last_index, last_term) VALUES(1, ?, ?)
		ON CONFLICT(id) DO UPDATE SET last_index = excluded.last_index, last_term = excluded.last_term`, int64(index), int64(term))
	return err
}

// LastIndexTerm returns the recorded last applied raft index and term.
func (d *DB) LastIndexTerm() (index, term uint64, err error) {
	var i, t int64
	err = d.db.QueryRow(`SELECT last_index, last_term FROM raft_state WHERE id = 1`).Scan(&i, &t)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	return uint64(i), uint64(t), err
}

// Epoch returns the recorded cluster epoch (epoch 0 when none is recorded).
func (d *DB) Epoch() (api.Epoch, error) {
	var e api.Epoch
	err := d.getJSON(KeyEpoch, &e)
	return e, err
}

// SetEpoch records the cluster epoch.
func (d *DB) SetEpoch(e api.Epoch) error { return d.setJSON(KeyEpoch, e) }

// CutOff returns why this member was cut off, nil when it was not.
func (d *DB) CutOff() (*api.CutOff, error) {
	var c api.CutOff
	v, err := d.Get(KeyCutOff)
	if err != nil || v == "" {
		return nil, err
	}
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return nil, fmt.Errorf("node-local %s: %w", KeyCutOff, err)
	}
	return &c, nil
}

// SetCutOff records why this member was cut off.
func (d *DB) SetCutOff(c api.CutOff) error { return d.setJSON(KeyCutOff, c) }

func (d *DB) getJSON(key string, out any) error {
	v, err := d.Get(key)
	if err != nil || v == "" {
		return err
	}
	if err := json.Unmarshal([]byte(v), out); err != nil {
		return fmt.Errorf("node-local %s: %w", key, err)
	}
	return nil
}

func (d *DB) setJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return d.Set(map[string]string{key: string(b)})
}

// KeepToken keeps a token operation this member issued (id, and what rebuilds it: its
// secret included, like the cluster key this directory also holds), so that the token
// still works and is listed after the daemon restarts.
func (d *DB) KeepToken(id string, saved []byte) error {
	_, err := d.db.Exec(`INSERT OR REPLACE INTO tokens(id, saved) VALUES(?, ?)`, id, string(saved))
	return err
}

// DropToken forgets a token operation that ended (used, revoked or expired).
func (d *DB) DropToken(id string) error {
	_, err := d.db.Exec(`DELETE FROM tokens WHERE id = ?`, id)
	return err
}

// Tokens are the kept token operations, by id.
func (d *DB) Tokens() (map[string][]byte, error) {
	rows, err := d.db.Query(`SELECT id, saved FROM tokens`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id, saved string
		if err := rows.Scan(&id, &saved); err != nil {
			return nil, err
		}
		out[id] = []byte(saved)
	}
	return out, rows.Err()
}
