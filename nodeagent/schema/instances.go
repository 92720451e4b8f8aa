package schema

// instancesV1 is the instances and images part of the first schema (0 → 1); it is part
// of that update because nothing has been released yet (a later change gets its own
// update). No semicolons inside statements: updates are split on ';'.
const instancesV1 = `
CREATE TABLE instances (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  member_id INTEGER NOT NULL, image TEXT NOT NULL DEFAULT '', profiles TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'CREATING', description TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL DEFAULT 0,
  config TEXT NOT NULL DEFAULT '{}');
CREATE INDEX instances_member ON instances(member_id);
CREATE TABLE images (fingerprint TEXT PRIMARY KEY, size INTEGER NOT NULL DEFAULT 0,
  architecture TEXT NOT NULL DEFAULT '', properties TEXT NOT NULL DEFAULT '{}',
  source TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE images_aliases (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '');
CREATE TABLE images_members (fingerprint TEXT NOT NULL, member_id INTEGER NOT NULL,
  UNIQUE(fingerprint, member_id));
CREATE TABLE remotes (name TEXT PRIMARY KEY, url TEXT NOT NULL,
  protocol TEXT NOT NULL DEFAULT 'simplestreams');
`
