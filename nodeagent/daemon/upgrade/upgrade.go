// Package upgrade owns rolling upgrades of a cluster: the version gate (a member newer than
// another is BLOCKED until all match; one older than the database must be upgraded), and
// the schema migration the leader runs once every member is newer than the database, in
// one guarded raft entry. What members run and whether this member leads are the daemon's,
// reached through the small interfaces below; the gate's inputs (heartbeats, the local
// replica) and the refusal of requests stay with the daemon.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package upgrade

import (
	"context"
	"log/slog"

	"orch/nodeagent/daemon/db"
	"orch/nodeagent/store"
	"orch/nodeagent/version"
)

// LocalReader reads this member's replica without any consistency check.
type LocalReader interface {
	QueryLocal(ctx context.Context, sql string, args ...any) (db.Rows, error)
}

// Database is the replica and the atomic write through raft.
type Database interface {
	LocalReader
	Exec(ctx context.Context, stmts ...store.Statement) ([]store.Result, error)
}

// Cluster is what a migration needs to know of the membership.
type Cluster interface {
	// Leader reports whether this member has the database open and leads.
	Leader() bool
	// Versions are the members' versions as this member's replica has them, in id order.
	Versions(ctx context.Context) ([]version.Info, error)
}

// Migrator runs schema migrations on the leader.
type Migrator struct {
	db      Database
	cluster Cluster
	log     *slog.Logger
}

// NewMigrator builds a Migrator.
func NewMigrator(d Database, c Cluster, log *slog.Logger) *Migrator {
	return &Migrator{db: d, cluster: c, log: log}
}
