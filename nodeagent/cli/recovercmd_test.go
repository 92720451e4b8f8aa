package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/internal/wait"
	"orch/nodeagent/daemon"
)

// The recovery commands on a real member: list-database from the daemon and from the
// files once it is stopped, recover-from-quorum-loss refused while the daemon runs,
// aborted without changing anything when the operator says no, and done when they say
// yes (the daemon package tests what the recovery does to raft and the local database).
func TestRecoverCommands(t *testing.T) {
	a := startAgent(t)
	if out := a.mustRun("", "cluster", "list-database"); !strings.Contains(out, "n1") || !strings.Contains(out, "Cluster epoch 0 (no recovery)") {
		t.Errorf("list-database from the daemon:\n%s", out)
	}
	code, _, errb := a.run("", "cluster", "recover-from-quorum-loss", "--yes")
	if code != 1 || !strings.Contains(errb, "the daemon is running in "+a.dir+": stop it first") {
		t.Errorf("recover while running: exit %d, %q", code, errb)
	}
	// The node-local list of database members is written by the first heartbeat round;
	// the offline view below reads it.
	wait.For(t, 10*time.Second, "n1 recorded as the database member", func() error {
		ldb, err := daemon.OpenLocal(a.dir)
		if err != nil {
			return err
		}
		defer ldb.Close()
		if nodes, err := ldb.RaftNodes(); err != nil || len(nodes) != 1 {
			return fmt.Errorf("raft members %v, %v", nodes, err)
		}
		return nil
	})
	a.stop()
	offline := a.mustRun("", "cluster", "list-database")
	for _, want := range []string{"| n1 ", "voter", "Last raft log entry: index ", "Last applied entry: index ", "Cluster epoch 0 (no recovery)"} {
		if !strings.Contains(offline, want) {
			t.Errorf("list-database from the files has no %q:\n%s", want, offline)
		}
	}
	code, out, errb := a.run("no\n", "cluster", "recover-from-quorum-loss")
	if code != 1 || !strings.Contains(out, "Recover n1 as the only database member and start cluster epoch 1?") || !strings.Contains(errb, "aborted: nothing changed") {
		t.Errorf("recover answered no: exit %d, %q, %q", code, out, errb)
	}
	if backups, _ := filepath.Glob(filepath.Join(a.dir, "database.backup-*")); len(backups) != 0 {
		t.Errorf("an aborted recovery made backups %v", backups)
	}
	out = a.mustRun("yes\n", "cluster", "recover-from-quorum-loss")
	if !strings.Contains(out, "Recovered: n1 is now the only database member, in cluster epoch 1 (recovery on n1 at ") || !strings.Contains(out, " log entries beyond the last known-committed index ") {
		t.Errorf("recover printed:\n%s", out)
	}
	backups, _ := filepath.Glob(filepath.Join(a.dir, "database.backup-*"))
	if len(backups) != 1 || !strings.Contains(out, "(backup in "+backups[0]+")") {
		t.Errorf("backups %v; recover printed:\n%s", backups, out)
	} else if entries, err := os.ReadDir(backups[0]); err != nil || len(entries) == 0 {
		t.Errorf("backup %s: %d entries, %v", backups[0], len(entries), err)
	}
	if out := a.mustRun("", "cluster", "list-database"); !strings.Contains(out, "Cluster epoch 1 (recovery on n1 at ") {
		t.Errorf("list-database after recovery:\n%s", out)
	}
}
