package localdb

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"orch/nodeagent/api"
)

// The config table is kept in memory: every Set is seen at once by Get, Config and a new
// Generation, persists across a reopen, and a Set that fails changes nothing.
func TestConfigCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "local.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get("core.https_address"); v != "" || err != nil {
		t.Fatalf("unset key: %q, %v", v, err)
	}
	g0 := d.Generation()
	if err := d.Set(map[string]string{"core.https_address": "127.0.0.1:8443", "user.a": "1"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("core.https_address"); v != "127.0.0.1:8443" {
		t.Errorf("after Set: %q", v)
	}
	cfg, g1, err := d.ConfigAt()
	if err != nil || len(cfg) != 2 || g1 == g0 {
		t.Errorf("ConfigAt after Set: %v gen %d (before %d), %v", cfg, g1, g0, err)
	}
	cfg["user.a"] = "changed by the caller"
	if v, _ := d.Get("user.a"); v != "1" {
		t.Errorf("a caller's change to Config's map reached the cache: %q", v)
	}
	if err := d.Set(map[string]string{"user.a": ""}); err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Get("user.a"); v != "" || d.Generation() == g1 {
		t.Errorf("after unsetting: %q, generation %d (was %d)", v, d.Generation(), g1)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Set(map[string]string{"user.b": "2"}); err == nil {
		t.Fatal("Set on a closed database succeeded")
	}
	if v, _ := d.Get("user.b"); v != "" {
		t.Errorf("a failed Set changed the cache: user.b = %q", v)
	}
	d, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if cfg, _ := d.Config(); len(cfg) != 1 || cfg["core.https_address"] != "127.0.0.1:8443" {
		t.Errorf("after reopening: %v", cfg)
	}
}

// The raft members are kept in memory too: SetRaftNodes is seen at once, sorted by name as
// the table reads, and survives a reopen.
func TestRaftNodesCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "local.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if nodes, err := d.RaftNodes(); nodes != nil || err != nil {
		t.Fatalf("no members recorded: %v, %v", nodes, err)
	}
	set := []api.DatabaseMember{{Name: "n2", Address: "b:1", Role: "voter"}, {Name: "n1", Address: "a:1", Role: "voter"}}
	if err := d.SetRaftNodes(set); err != nil {
		t.Fatal(err)
	}
	want := []api.DatabaseMember{set[1], set[0]}
	got, _ := d.RaftNodes()
	if !slices.Equal(got, want) {
		t.Errorf("after SetRaftNodes: %v, want %v", got, want)
	}
	got[0].Name = "changed by the caller"
	if again, _ := d.RaftNodes(); !slices.Equal(again, want) {
		t.Errorf("a caller's change reached the cache: %v", again)
	}
	if err := d.SetRaftNodes(want[:1]); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got, _ := d.RaftNodes(); !slices.Equal(got, want[:1]) {
		t.Errorf("after reopening: %v, want %v", got, want[:1])
	}
}

// TestTokensKeptPrivately: kept tokens come back after a reopen, dropped ones do not, and
// the file holding their secrets is 0600 (an older 0644 one too).
func TestTokensKeptPrivately(t *testing.T) {
	path := filepath.Join(t.TempDir(), "local.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.KeepToken("a", []byte(`{"secret":"s1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.KeepToken("b", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.DropToken("b"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.Tokens()
	if err != nil || len(got) != 1 || string(got["a"]) != `{"secret":"s1"}` {
		t.Fatalf("tokens after reopen: %q %v", got, err)
	}
	for _, p := range []string{path, path + "-wal"} {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, st.Mode().Perm())
		}
	}
}
