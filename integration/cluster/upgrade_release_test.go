package cluster

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orch/integration/agenttest"
	"orch/internal/wait"
	"orch/nodeagent/api"
	orchschema "orch/nodeagent/schema"
)

// previousRelease is the last commit at schema 1 (before instance devices and cluster
// groups), the build clusters in the field run.
const previousRelease = "4b0c4fa587b9cb65e8307f1ae59024c3851d5a5d"

// TestUpgradeFromSchema1 forms a cluster on the previous release's binary (schema 1, built
// from this repository's history), writes to it, and upgrades it member by member to this
// build: the upgraded members are BLOCKED until the last one is, then the leader runs the
// real migration once (instances.devices, cluster groups), every row written before and
// during the upgrade is on every replica, and the new features answer.
func TestUpgradeFromSchema1(t *testing.T) {
	if err := exec.Command("git", "cat-file", "-e", previousRelease+"^{commit}").Run(); err != nil {
		t.Skipf("the previous release %s is not in this clone's history (a shallow clone?): %v", previousRelease[:12], err)
	}
	old := filepath.Join(t.TempDir(), "nodeagent-schema1")
	if err := agenttest.BuildAgentAt(old, previousRelease); err != nil {
		t.Fatalf("building the previous release (%s): %v", previousRelease[:12], err)
	}
	ms := make([]*agenttest.Agent, 3)
	for i := range ms {
		ms[i] = agenttest.New(t, fmt.Sprintf("node%d", i+1), agenttest.NewAddr(t))
		ms[i].Bin = old
		ms[i].Start()
	}
	agenttest.Form(t, ms)
	for i, m := range ms {
		m.MustRun("config", "set", fmt.Sprintf("user.before-%d", i), m.Name)
	}
	waitAllOnline(t, ms[0], 3, 10*time.Second)

	for i, m := range ms {
		if code := m.Stop(); code != 0 {
			t.Fatalf("%s exited %d on SIGTERM", m.Name, code)
		}
		m.StartWith(agenttest.Bin())
		if i < len(ms)-1 {
			checkBlocked(t, m, names(ms[i+1:]))
			ms[i+1].MustRun("config", "set", fmt.Sprintf("user.during-%d", i), "yes")
		}
	}
	for _, m := range ms {
		waitWrite(t, m, "user.after-"+m.Name, "yes", 10*time.Second)
	}
	for _, m := range ms {
		wait.For(t, 10*time.Second, m.Name+"'s replica migrated", func() error { return checkMigrated(m) })
	}
	want := map[string]string{}
	for i, m := range ms {
		want[fmt.Sprintf("user.before-%d", i)] = m.Name
		want["user.after-"+m.Name] = "yes"
	}
	for i := range ms[:len(ms)-1] {
		want[fmt.Sprintf("user.during-%d", i)] = "yes"
	}
	settledReplicas(t, ms, want)

	// The new schema's features on the upgraded cluster.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ms[1].Client().CallHeaders(ctx, http.MethodPost, "/1.0/cluster/groups", api.ClusterGroup{Name: "g1", Members: []string{"node2"}}, nil, nil); err != nil {
		t.Fatalf("creating a cluster group after the upgrade: %v", err)
	}
	var node2 api.ClusterMember
	if err := ms[0].Client().CallHeaders(ctx, http.MethodGet, "/1.0/cluster/members/node2", nil, &node2, nil); err != nil || strings.Join(node2.Groups, ",") != "default,g1" {
		t.Fatalf("node2 after the upgrade: groups %v, %v", node2.Groups, err)
	}
}

// checkMigrated checks a's replica: this build's schema version, schema update 2 applied
// once (one default group), instances with their devices column.
func checkMigrated(a *agenttest.Agent) error {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(a.Dir, "database", "global.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var schema, groups, devices int
	if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'schema_version'`).Scan(&schema); err != nil {
		return err
	}
	if schema != orchschema.Latest() {
		return fmt.Errorf("schema_version %d, want %d", schema, orchschema.Latest())
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM cluster_groups WHERE name = 'default'`).Scan(&groups); err != nil || groups != 1 {
		return fmt.Errorf("default cluster groups: %d, %v", groups, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('instances') WHERE name = 'devices'`).Scan(&devices); err != nil || devices != 1 {
		return fmt.Errorf("instances.devices: %d, %v", devices, err)
	}
	return nil
}
