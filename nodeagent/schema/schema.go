// Package schema is the global database's schema and its migrations. Migrations run once,
// through raft, by the leader when every member speaks the new schema.
package schema

// Updates[i] brings the schema from version i to i+1. Version 0 is the empty database.
// Builds with the schemav2 tag append testUpdates (see testupdates_v2.go), so that tests can
// run a cluster through a real schema upgrade; production builds append nothing.
var Updates = append(core, testUpdates...)

// core is the schema every build has.
var core = []string{
	// 0 → 1: the cluster core.
	`
CREATE TABLE members (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  address TEXT NOT NULL UNIQUE,
  client_address TEXT NOT NULL DEFAULT '',
  version TEXT NOT NULL DEFAULT '',
  schema INTEGER NOT NULL DEFAULT 0,
  api_level INTEGER NOT NULL DEFAULT 0,
  heartbeat INTEGER NOT NULL DEFAULT 0,
  joined_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta(key, value) VALUES ('config_version', 1);
CREATE TABLE tokens (name TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE certificates (fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, certificate TEXT NOT NULL);
CREATE TABLE storage_pools (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, driver TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '');
CREATE TABLE storage_pools_config (pool_id INTEGER NOT NULL REFERENCES storage_pools(id) ON DELETE CASCADE,
  member_id INTEGER NOT NULL DEFAULT 0, key TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(pool_id, member_id, key));
CREATE TABLE storage_pools_members (pool_id INTEGER NOT NULL REFERENCES storage_pools(id) ON DELETE CASCADE,
  member_id INTEGER NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', UNIQUE(pool_id, member_id));
CREATE TABLE networks (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '');
CREATE TABLE networks_config (network_id INTEGER NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
  member_id INTEGER NOT NULL DEFAULT 0, key TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(network_id, member_id, key));
CREATE TABLE networks_members (network_id INTEGER NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
  member_id INTEGER NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', UNIQUE(network_id, member_id));
CREATE TABLE profiles (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '');
CREATE TABLE profiles_config (profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
  key TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(profile_id, key));
CREATE TABLE profiles_devices (profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
  device TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(profile_id, device, key));
` + instancesV1 + storageV1 + membersInfoV1,
	// 1 → 2: devices set on an instance itself (LXD's instance devices: `lxc config device
	// add`, `lxc storage volume attach`), a JSON object of device name → its keys; cluster
	// groups (a member in no group row is in "default", which always exists); members
	// evacuated for maintenance (`lxc cluster evacuate`); instance snapshots.
	`
ALTER TABLE instances ADD COLUMN devices TEXT NOT NULL DEFAULT '{}';
CREATE TABLE cluster_groups (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '');
CREATE TABLE cluster_groups_members (group_id INTEGER NOT NULL REFERENCES cluster_groups(id) ON DELETE CASCADE,
  member_id INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE, UNIQUE(group_id, member_id));
INSERT INTO cluster_groups(name, description) VALUES ('default', 'Default cluster group');
ALTER TABLE members ADD COLUMN evacuated INTEGER NOT NULL DEFAULT 0;
CREATE TABLE instances_snapshots (id INTEGER PRIMARY KEY,
  instance_id INTEGER NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
  name TEXT NOT NULL, created_at INTEGER NOT NULL DEFAULT 0, UNIQUE(instance_id, name));
`,
}

// Latest is the schema version this package can build.
func Latest() int { return len(Updates) }
