package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"

	_ "github.com/mattn/go-sqlite3" // reads each member's replica file directly
)

// replicaState is what one member's own copy of the global database holds.
type replicaState struct {
	version int64             // meta.config_version: bumped once per applied config write
	user    map[string]string // the user.* keys
}

// readReplica reads a member's replica (DIR/database/global.db) read-only, in one read
// transaction, beside the running daemon.
func readReplica(a *agenttest.Agent) (replicaState, error) {
	path := filepath.Join(a.Dir, "database", "global.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return replicaState{}, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return replicaState{}, fmt.Errorf("%s: %w", path, err)
	}
	defer tx.Rollback()
	st := replicaState{user: map[string]string{}}
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'config_version'`).Scan(&st.version); err != nil {
		return st, fmt.Errorf("%s: config_version: %w", path, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT key, value FROM config WHERE key LIKE 'user.%'`)
	if err != nil {
		return st, fmt.Errorf("%s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return st, err
		}
		st.user[k] = v
	}
	return st, rows.Err()
}

// settledReplicas waits until every member's replica holds the same config version and
// user.* keys (equal to want, when want is not nil) and returns that state.
func settledReplicas(t *testing.T, ms []*agenttest.Agent, want map[string]string) replicaState {
	t.Helper()
	var first replicaState
	wait.For(t, 20*time.Second, "every replica to hold the same configuration", func() error {
		for i, a := range ms {
			st, err := readReplica(a)
			if err != nil {
				return err
			}
			if i == 0 {
				first = st
				if want != nil {
					if k := firstDiff(want, st.user); k != "" {
						return fmt.Errorf("%s's replica: %s=%q, linearizable read %q", a.Name, k, st.user[k], want[k])
					}
				}
				continue
			}
			if st.version != first.version {
				return fmt.Errorf("config_version %d in %s's replica, %d in %s's", st.version, a.Name, first.version, ms[0].Name)
			}
			if k := firstDiff(first.user, st.user); k != "" {
				return fmt.Errorf("%s=%q in %s's replica, %q in %s's", k, st.user[k], a.Name, first.user[k], ms[0].Name)
			}
		}
		return nil
	})
	return first
}
