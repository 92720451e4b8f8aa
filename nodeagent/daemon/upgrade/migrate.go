package upgrade

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"orch/nodeagent/daemon/db"
	"orch/nodeagent/schema"
	"orch/nodeagent/store"
	"orch/nodeagent/version"
)

// The database records its version in the meta table: schema_version (written at bootstrap)
// and api_level (written by the first migration; absent means 0).
const (
	metaSchemaVersion = "schema_version"
	metaAPILevel      = "api_level"
)

// ClusterVersion reads the database's schema version and API level from this member's
// replica (Version is left empty: the database has no release version).
func ClusterVersion(ctx context.Context, r LocalReader) (version.Info, error) {
	rows, err := r.QueryLocal(ctx, `SELECT key, value FROM meta WHERE key IN (?, ?)`, metaSchemaVersion, metaAPILevel)
	if err != nil {
		return version.Info{}, fmt.Errorf("reading the database version: %w", err)
	}
	var v version.Info
	for _, r := range rows {
		switch db.Str(r[0]) {
		case metaSchemaVersion:
			v.Schema = int(db.I64(r[1]))
		case metaAPILevel:
			v.APILevel = int(db.I64(r[1]))
		}
	}
	return v, nil
}

// Migrate (leader) brings the database up to the oldest member's version once every
// member runs a newer one than the database: the missing schema updates and the new
// versions go through raft in ONE entry, guarded by compare-and-set on both meta rows, so
// that it applies exactly once even if two leaders (or two rounds) try. It reports whether
// this call migrated.
func (m *Migrator) Migrate(ctx context.Context) (bool, error) {
	if !m.cluster.Leader() {
		return false, nil
	}
	members, err := m.cluster.Versions(ctx)
	if err != nil {
		return false, err
	}
	from, err := ClusterVersion(ctx, m.db)
	if err != nil {
		return false, err
	}
	to, ok := Target(members, from, schema.Latest())
	if !ok {
		return false, nil
	}
	_, err = m.db.Exec(ctx, Statements(from, to)...)
	if errors.Is(err, store.ErrConflict) {
		return false, nil // another round migrated first
	}
	if err != nil {
		return false, fmt.Errorf("migrating the database from schema %d API %d to schema %d API %d: %w",
			from.Schema, from.APILevel, to.Schema, to.APILevel, err)
	}
	m.log.Info("database migrated", "from_schema", from.Schema, "to_schema", to.Schema,
		"from_api", from.APILevel, "to_api", to.APILevel)
	return true, nil
}

// Target is the version the database can move to: the oldest member's, when every
// member's version is known and newer than the database's; the schema is capped at what
// this binary can build (latest). ok is false when there is nothing to do.
func Target(members []version.Info, dbv version.Info, latest int) (to version.Info, ok bool) {
	if len(members) == 0 || dbv.Schema == 0 {
		return version.Info{}, false
	}
	oldest := members[0]
	for _, v := range members {
		if v.Schema == 0 {
			return version.Info{}, false // a member that never reported its version
		}
		oldest = version.Min(oldest, v)
	}
	to = version.Info{Schema: min(oldest.Schema, latest), APILevel: oldest.APILevel}
	if to.Schema < dbv.Schema || version.Compare(to, dbv) <= 0 {
		return version.Info{}, false
	}
	return to, true
}

// Statements is the one request of a migration: the two compare-and-set guards
// first (a mismatch rolls the whole request back), then the schema updates.
func Statements(from, to version.Info) []store.Statement {
	stmts := []store.Statement{
		{
			SQL:    `UPDATE meta SET value = ? WHERE key = ? AND value = ?`,
			Args:   []any{int64(to.Schema), metaSchemaVersion, int64(from.Schema)},
			Expect: store.Int64(1),
		},
		{
			SQL: `INSERT INTO meta(key, value) VALUES(?, ?)
				ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE meta.value = ?`,
			Args:   []any{metaAPILevel, int64(to.APILevel), int64(from.APILevel)},
			Expect: store.Int64(1),
		},
	}
	if to.Schema > from.Schema {
		stmts = append(stmts, SchemaStatements(from.Schema, to.Schema)...)
	}
	return stmts
}

// SchemaStatements returns the DDL bringing the schema from version from to version to.
func SchemaStatements(from, to int) []store.Statement {
	var out []store.Statement
	for v := from; v < to; v++ {
		for _, sql := range strings.Split(schema.Updates[v], ";") {
			if sql = strings.TrimSpace(sql); sql != "" {
				out = append(out, store.Statement{SQL: sql})
			}
		}
	}
	out = append(out, store.Statement{
		SQL:  `INSERT INTO meta(key, value) VALUES('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
		Args: []any{int64(to)},
	})
	return out
}
