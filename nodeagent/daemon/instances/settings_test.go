package instances

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"orch/nodeagent/schema"
	"orch/nodeagent/store"
)

// TestParseLimits: LXD's forms of the limits keys, and bad values refused naming the key.
func TestParseLimits(t *testing.T) {
	for _, c := range []struct {
		key, value string
		want       string // "" means refused
	}{
		{keyLimitsMemory, "256MiB", "mem=268435456"},
		{keyLimitsMemory, "256MB", "mem=256000000"},
		{keyLimitsMemory, "1GiB", "mem=1073741824"},
		{keyLimitsMemory, "1.5GB", "mem=1500000000"},
		{keyLimitsMemory, "134217728", "mem=134217728"},
		{keyLimitsMemory, "lots", ""},
		{keyLimitsMemory, "1KB", ""},
		{keyLimitsMemory, "0%", ""},
		{keyLimitsMemory, "150%", ""},
		{keyLimitsCPU, "1", "cpus=0"},
		{keyLimitsCPU, "0-1,3", "cpus=0-1,3"},
		{keyLimitsCPU, "0", ""},
		{keyLimitsCPU, "0-x", ""},
		{keyLimitsProcesses, "100", "procs=100"},
		{keyLimitsProcesses, "0", ""},
		{keyLimitsProcesses, "many", ""},
	} {
		l, err := parseLimits(map[string]string{c.key: c.value})
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), c.key) {
				t.Errorf("%s=%s: %v, want an error naming the key", c.key, c.value, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s=%s: %v", c.key, c.value, err)
			continue
		}
		got := map[string]string{
			keyLimitsMemory: "mem=" + itoa(l.Memory), keyLimitsCPU: "cpus=" + l.CPUs, keyLimitsProcesses: "procs=" + itoa(l.Processes),
		}[c.key]
		if got != c.want {
			t.Errorf("%s=%s: %s, want %s", c.key, c.value, got, c.want)
		}
	}
	if l, err := parseLimits(map[string]string{keyLimitsMemory: "50%"}); err != nil || l.Memory <= 0 {
		t.Errorf("limits.memory=50%%: %+v, %v", l, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestInstancesReadAcrossTheDevicesMigration: a member already running this build reads
// its instances from a database still at schema 1 (no devices column: it is BLOCKED until
// the last member is upgraded, but starts its containers at boot), and after the migration
// (schema update 2, as the leader runs it) the same row has devices that can be written.
func TestInstancesReadAcrossTheDevicesMigration(t *testing.T) {
	s := newServiceAt(t, 1)
	ctx := context.Background()
	if _, err := s.db.Exec(ctx, store.Statement{SQL: `INSERT INTO instances(name, member_id, profiles, state, config)
		VALUES('c1', (SELECT id FROM members WHERE name = 'n1'), '', 'CREATED', '{"user.a":"b"}')`}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.instances(ctx, "")
	if err != nil || len(rows) != 1 || rows[0].config["user.a"] != "b" || len(rows[0].devices) != 0 {
		t.Fatalf("instances at schema 1: %+v, %v", rows, err)
	}
	var update []store.Statement
	for _, sql := range strings.Split(schema.Updates[1], ";") {
		if sql = strings.TrimSpace(sql); sql != "" {
			update = append(update, store.Statement{SQL: sql})
		}
	}
	if _, err := s.db.Exec(ctx, update...); err != nil {
		t.Fatalf("schema update 2: %v", err)
	}
	dev := map[string]map[string]string{"data": {"type": "disk", "source": "/srv", "path": "/data"}}
	if err := s.writeInstanceConfig(ctx, "c1", map[string]string{"user.a": "c"}, nil, dev); err != nil {
		t.Fatal(err)
	}
	rows, err = s.instances(ctx, "c1")
	if err != nil || len(rows) != 1 || rows[0].config["user.a"] != "c" || rows[0].devices["data"]["source"] != "/srv" {
		t.Fatalf("instances at schema 2 after a write: %+v, %v", rows, err)
	}
}
