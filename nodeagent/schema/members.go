package schema

// membersInfoV1 gives members what `lxc cluster list` shows besides their address and
// roles: the architecture (recorded by each member from its kernel), the failure domain
// and a description (set with `cluster edit`). Part of the first update, like instancesV1:
// nothing has been released yet. No semicolons inside statements.
const membersInfoV1 = `
ALTER TABLE members ADD COLUMN architecture TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN failure_domain TEXT NOT NULL DEFAULT 'default';
ALTER TABLE members ADD COLUMN description TEXT NOT NULL DEFAULT '';
`
