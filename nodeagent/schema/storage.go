package schema

// storageV1 is the custom volumes part of the first schema (0 → 1), like instancesV1:
// nothing has been released yet. A volume lives on one member of one pool; the same name
// may exist on several members. No semicolons inside statements.
const storageV1 = `
CREATE TABLE storage_volumes (id INTEGER PRIMARY KEY,
  pool_id INTEGER NOT NULL REFERENCES storage_pools(id) ON DELETE CASCADE,
  member_id INTEGER NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL DEFAULT 'custom',
  description TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT 'Created',
  UNIQUE(pool_id, member_id, type, name));
CREATE TABLE storage_volumes_config (volume_id INTEGER NOT NULL REFERENCES storage_volumes(id) ON DELETE CASCADE,
  key TEXT NOT NULL, value TEXT NOT NULL, UNIQUE(volume_id, key));
`
