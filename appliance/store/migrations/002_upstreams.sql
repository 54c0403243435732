-- Upstream identity sources, users provisioned from them, and the cached
-- verifiers of the "cached" failmode.
CREATE TABLE upstreams (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
	kind       TEXT NOT NULL,
	config     TEXT NOT NULL,
	secret     BLOB,
	version    INTEGER NOT NULL DEFAULT 1,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

-- "local", or the name of the upstream that vouched for the user first.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';

CREATE TABLE cached_verifiers (
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	upstream    TEXT NOT NULL,
	hash        TEXT NOT NULL,
	groups      TEXT NOT NULL DEFAULT '',
	verified_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, upstream)
);
