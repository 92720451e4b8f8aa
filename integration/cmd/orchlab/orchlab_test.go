package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orch/integration/lab"
)

func orchlab(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(args, &out, &errOut); err != nil {
		t.Fatalf("orchlab %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

func TestUpStatusExecDown(t *testing.T) {
	lab.Require(t)
	dir := filepath.Join(t.TempDir(), "orch-lab")
	keep := filepath.Join(dir, "not-the-labs")
	t.Cleanup(func() { run([]string{"down", "--dir", dir}, new(bytes.Buffer), new(bytes.Buffer)) })

	out := orchlab(t, "up", "--dir", dir, "-n", "2", "--var", "agent_dir=/var/lib/nodeagent")
	if !strings.Contains(out, "host2 ") || !strings.Contains(out, "inventory.ini") {
		t.Errorf("up printed:\n%s", out)
	}
	for _, f := range []string{"inventory.ini", "known_hosts", "id_ed25519", "ssh_config"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("up did not write %s: %v", f, err)
		}
	}
	if out := orchlab(t, "exec", "--dir", dir, "host2", "--", "hostname"); out != "host2\n" {
		t.Errorf("exec hostname: %q", out)
	}
	orchlab(t, "partition", "--dir", dir, "host1")
	orchlab(t, "kill", "--dir", dir, "host2")
	out = orchlab(t, "status", "--dir", dir)
	if !strings.Contains(out, "up, partitioned") || !strings.Contains(out, "host2  10.") || !strings.Contains(out, "down") {
		t.Errorf("status after partition and kill:\n%s", out)
	}
	orchlab(t, "heal", "--dir", dir, "host1")
	orchlab(t, "start", "--dir", dir, "host2")
	if out := orchlab(t, "status", "--dir", dir); strings.Count(out, " up\n") != 2 {
		t.Errorf("status after heal and start:\n%s", out)
	}
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	orchlab(t, "down", "--dir", dir)
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 || entries[0].Name() != "not-the-labs" {
		t.Errorf("down outside /tmp/orch-lab* must remove just the lab's files: %v, %v", entries, err)
	}
	orchlab(t, "down", "--dir", dir) // idempotent
}
