//go:build schemav2

package schema

// testUpdates is one harmless update that only test builds (tag schemav2) carry: a new
// table, and one row in it recorded by the migration itself, so that a test can check the
// migration ran exactly once (a second run would fail on CREATE TABLE, or add a row).
var testUpdates = []string{
	// the core's last version → one more: a probe table for upgrade tests.
	`
CREATE TABLE schema_probe (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
INSERT INTO schema_probe(note) VALUES ('migrated to 2');
`,
}
