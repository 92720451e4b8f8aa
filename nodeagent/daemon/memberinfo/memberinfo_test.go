package memberinfo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/db"
	"orch/nodeagent/store"
)

// The real path (each member records its architecture, `cluster edit` sets the failure
// domain and description, `cluster list` shows them) runs on a real member in
// nodeagent/cli TestVerbsAgainstAgent and integration/cluster TestMemberColumns. These pin
// the behaviour on a database written by a build before the columns, with a database that
// answers as such a one does.

// oldDatabase has no descriptive columns in its members table.
type oldDatabase struct{ writes int }

func (o *oldDatabase) Query(ctx context.Context, sql string, args ...any) (db.Rows, error) {
	return o.QueryLocal(ctx, sql, args...)
}

func (o *oldDatabase) QueryLocal(context.Context, string, ...any) (db.Rows, error) {
	return nil, errors.New("no such column: architecture")
}

func (o *oldDatabase) Exec(context.Context, ...store.Statement) ([]store.Result, error) {
	o.writes++
	return nil, nil
}

type member struct{}

func (member) Self() string    { return "m1" }
func (member) Clustered() bool { return true }

func TestOldDatabaseWithoutColumns(t *testing.T) {
	old := &oldDatabase{}
	s := New(old, member{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	views := []api.ClusterMember{{ServerName: "m1"}}
	if err := s.Add(context.Background(), views); err != nil || views[0].Architecture != "" || views[0].FailureDomain != "" {
		t.Errorf("cluster list on an old database: %v %+v; want the fields left empty, no error", err, views[0])
	}
	if !s.recordArchitecture(context.Background(), "x86_64") || old.writes != 0 {
		t.Errorf("recording the architecture on an old database: want done at once without a write (writes %d)", old.writes)
	}
	if machine() == "" {
		t.Error("uname -m is empty")
	}
}
