-- Directory sync: users and groups pulled from a cloud directory
-- (Microsoft Graph, Okta) so that policy and the LDAP door know who exists
-- before their first login.
ALTER TABLE users ADD COLUMN ext_id TEXT NOT NULL DEFAULT '';
ALTER TABLE upstreams ADD COLUMN sync_secret BLOB;

CREATE TABLE dir_groups (
	upstream TEXT NOT NULL,
	ext_id   TEXT NOT NULL,
	name     TEXT NOT NULL,
	PRIMARY KEY (upstream, ext_id)
);

CREATE TABLE dir_members (
	upstream  TEXT NOT NULL,
	group_ext TEXT NOT NULL,
	user_ext  TEXT NOT NULL,
	PRIMARY KEY (upstream, group_ext, user_ext)
);

CREATE TABLE dir_sync (
	upstream   TEXT PRIMARY KEY,
	state      TEXT NOT NULL DEFAULT '',
	last_run   INTEGER,
	last_ok    INTEGER,
	last_error TEXT NOT NULL DEFAULT '',
	users      INTEGER NOT NULL DEFAULT 0,
	groups     INTEGER NOT NULL DEFAULT 0
);
