package jepsen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // reads the members' own replicas
)

// replica is what one member's own copy of the global database holds: its configuration
// version and its configuration table.
type replica struct {
	version int64
	config  map[string]string
}

// errNoAgent is returned when a member's replica cannot be reached because its agent is down.
var errNoAgent = errors.New("agent not running")

// replicaPath is the host-side path of m's global database: through the agent's
// /proc/PID/root, so that a database directory mounted inside the host's mount namespace
// (a small loop filesystem) is the one read.
func (m *member) replicaPath() (string, error) {
	m.mu.Lock()
	pid := m.pid
	m.mu.Unlock()
	if pid == 0 {
		return "", fmt.Errorf("%s: %w", m.name, errNoAgent)
	}
	return fmt.Sprintf("/proc/%d/root%s/database/global.db", pid, agentDir), nil
}

// replica reads m's own replica directly from its SQLite file (read-only), bypassing the
// daemon: no leader, no forwarding, no consistency check.
func (m *member) replica() (replica, error) {
	path, err := m.replicaPath()
	if err != nil {
		return replica{}, err
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000&_query_only=true")
	if err != nil {
		return replica{}, fmt.Errorf("%s: opening its replica %s: %w", m.name, path, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return replica{}, fmt.Errorf("%s: reading its replica: %w", m.name, err)
	}
	defer tx.Rollback()
	r := replica{config: map[string]string{}}
	var ver string
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'config_version'`).Scan(&ver); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return replica{}, fmt.Errorf("%s: its replica's config version: %w", m.name, err)
	}
	r.version, _ = strconv.ParseInt(ver, 10, 64)
	rows, err := tx.QueryContext(ctx, `SELECT key, value FROM config`)
	if err != nil {
		return replica{}, fmt.Errorf("%s: its replica's config: %w", m.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return replica{}, fmt.Errorf("%s: its replica's config: %w", m.name, err)
		}
		r.config[k] = v
	}
	return r, rows.Err()
}

// etagVersion is the global configuration version an ETag of GET /1.0 names ("V-hash").
func etagVersion(etag string) (int64, error) {
	v, _, _ := strings.Cut(strings.Trim(etag, `"`), "-")
	return strconv.ParseInt(v, 10, 64)
}

// converge waits until every member's own replica is at the version a linearizable read
// returns, and compares them. It returns the replicas and, when two of them hold different
// configurations at the same version, what differs (they diverged).
func (c *cluster) converge(timeout time.Duration) (map[string]replica, []string) {
	c.t.Helper()
	cl := c.client(c.members[0])
	defer cl.Close()
	var out map[string]replica
	var diverged []string
	waitFor(c.t, timeout, "every member's own replica at the cluster's configuration version", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		s, etag, err := cl.Server(ctx)
		if err == nil {
			err = consistent(s, etag)
		}
		if err != nil {
			return err
		}
		want, err := etagVersion(etag)
		if err != nil {
			return fmt.Errorf("ETag %s: %w", etag, err)
		}
		out = map[string]replica{}
		for _, m := range c.members {
			r, err := m.replica()
			if err != nil {
				return err
			}
			if r.version != want {
				return fmt.Errorf("%s's replica is at config version %d, the cluster at %d", m.name, r.version, want)
			}
			out[m.name] = r
		}
		diverged = compareReplicas(c.members, out)
		return nil
	})
	return out, diverged
}

// compareReplicas describes how the members' replicas (all at one version) differ.
func compareReplicas(ms []*member, rs map[string]replica) []string {
	var out []string
	first := rs[ms[0].name].config
	for _, m := range ms[1:] {
		other := rs[m.name].config
		for _, k := range slices.Sorted(maps.Keys(union(first, other))) {
			if first[k] != other[k] {
				out = append(out, fmt.Sprintf("replicas diverged at config version %d: %s has %s=%q, %s has %q",
					rs[m.name].version, ms[0].name, k, first[k], m.name, other[k]))
			}
		}
	}
	return out
}

func union(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}
