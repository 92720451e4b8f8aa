// Package db is how the daemon's domains read the replicated database: query results as
// Rows, the readers of their cells, the statement builder, and the member row every domain
// that talks to other members uses. The database itself (linearizable reads, writes through
// raft, forwarding to the leader) is the daemon's; a domain declares the two methods it
// calls (Query, Exec) as an interface of its own.
//
// It is a leaf: it imports nodeagent/store and the standard library only, never the
// daemon, a domain package, orchestrator, playbooks or inventory.
package db

import (
	"database/sql"
	"fmt"
	"sort"
	"strconv"

	"orch/nodeagent/store"
)

// Rows is a query result: one []any per row, values int64, float64, string or nil.
type Rows [][]any

// Str reads a column value of Rows as a string ("" for NULL).
func Str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case int64:
		return strconv.FormatInt(x, 10)
	default:
		return fmt.Sprint(x)
	}
}

// I64 reads a column value of Rows as an integer (0 for NULL or text that is not one).
func I64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// Scan reads every row of rows (and closes it): one []any per row, text as string.
func Scan(rows *sql.Rows) (Rows, error) {
	defer rows.Close()
	cols, _ := rows.Columns()
	var out Rows
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// Stmt builds one statement.
func Stmt(sql string, args ...any) store.Statement {
	return store.Statement{SQL: sql, Args: args}
}

// SortedKeys are m's keys in order, so that statements built from a map are deterministic.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Member is a cluster member as another domain sees it: its name and cluster address
// (where its internal API answers).
type Member struct {
	Name    string
	Address string
}
