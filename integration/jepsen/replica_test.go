package jepsen

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"

	_ "github.com/mattn/go-sqlite3" // reads the members' own replicas
)

// replica is what one member's own copy of the global database holds: its configuration
// version and its configuration table.
type replica struct {
	version int64
	config  map[string]string
}

// replicaEnv, when set in the environment, makes the test binary read the SQLite file it
// names, print it as JSON and exit (see TestMain): the test runs itself inside a member's
// mount namespace, where that member's database directory (maybe a loop filesystem of its
// own) is mounted. SQLite resolves symbolic links, so /proc/PID/root/... would lead it back
// to the test's own namespace.
const replicaEnv = "JEPSEN_READ_REPLICA"

// replicaJSON is what the reader prints.
type replicaJSON struct {
	Version int64             `json:"version"`
	Config  map[string]string `json:"config"`
}

// readReplicaMain is the reader: it runs instead of the tests when replicaEnv is set.
func readReplicaMain(path string) int {
	r, err := readReplicaFile(path)
	if err == nil {
		err = json.NewEncoder(os.Stdout).Encode(replicaJSON{Version: r.version, Config: r.config})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// replica reads m's own replica directly from its SQLite file (read-only), bypassing the
// daemon: no leader, no forwarding, no consistency check.
func (m *member) replica() (replica, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := agentDir + "/database/global.db"
	out, err := m.host.Exec(ctx, "env", replicaEnv+"="+path, testBinary)
	if err != nil {
		return replica{}, fmt.Errorf("%s: reading its own replica %s: %w", m.name, path, err)
	}
	var r replicaJSON
	if err := json.Unmarshal(out, &r); err != nil {
		return replica{}, fmt.Errorf("%s: its replica %s: %w (%s)", m.name, path, err, out)
	}
	return replica{version: r.Version, config: r.Config}, nil
}

// testBinary is this test binary's absolute path, for running the replica reader.
var testBinary, _ = filepath.Abs(os.Args[0])

func readReplicaFile(path string) (replica, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000&_query_only=true")
	if err != nil {
		return replica{}, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return replica{}, fmt.Errorf("reading %s: %w", path, err)
	}
	defer tx.Rollback()
	r := replica{config: map[string]string{}}
	var ver string
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'config_version'`).Scan(&ver); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return replica{}, fmt.Errorf("%s: config version: %w", path, err)
	}
	r.version, _ = strconv.ParseInt(ver, 10, 64)
	rows, err := tx.QueryContext(ctx, `SELECT key, value FROM config`)
	if err != nil {
		return replica{}, fmt.Errorf("%s: config: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return replica{}, fmt.Errorf("%s: config: %w", path, err)
		}
		r.config[k] = v
	}
	return r, rows.Err()
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
	err := poll(timeout, func() error {
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
	if err != nil {
		c.dumpGoroutines()
		c.t.Fatalf("timed out after %v waiting for every member's own replica at the cluster's configuration version: %v (the members' goroutines are in their logs)", timeout, err)
	}
	return out, diverged
}

// dumpGoroutines sends SIGQUIT to every running agent: the Go runtime writes every
// goroutine's stack to its log (dumped with the lab's logs) and exits. It is for a
// failure that shows no error, such as a replica that stopped following the log.
func (c *cluster) dumpGoroutines() {
	for _, m := range c.members {
		if pid := m.agent.PID(); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			_ = syscall.Kill(pid, syscall.SIGQUIT)
		}
	}
	for _, m := range c.members {
		pid := m.agent.PID()
		_ = wait.Until(10*time.Second, func() error { // the dump takes a moment; SIGKILL would cut it
			if pid != 0 && !agenttest.Exited(pid) {
				return agenttest.ErrStillRunning
			}
			return nil
		})
		if err := m.agent.TryKill(agenttest.KillTimeout); err != nil {
			c.t.Error(err)
		}
	}
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
