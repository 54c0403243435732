-- The first schema. Times are Unix seconds (audit: nanoseconds), UTC.
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
	display_name  TEXT NOT NULL DEFAULT '',
	password_hash TEXT NOT NULL DEFAULT '',
	disabled      INTEGER NOT NULL DEFAULT 0,
	expires_at    INTEGER,
	allowed_hours TEXT NOT NULL DEFAULT '',
	failures      INTEGER NOT NULL DEFAULT 0,
	locked_until  INTEGER,
	version       INTEGER NOT NULL DEFAULT 1,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

CREATE TABLE groups (
	id   INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE COLLATE NOCASE
);

CREATE TABLE user_groups (
	user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	position INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, group_id)
);

CREATE TABLE clients (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
	door       TEXT NOT NULL DEFAULT 'radius',
	address    TEXT NOT NULL,
	secret     BLOB NOT NULL,
	policy     TEXT NOT NULL,
	version    INTEGER NOT NULL DEFAULT 1,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (door, address)
);

CREATE TABLE mfa_totp (
	user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	seed       BLOB NOT NULL,
	digits     INTEGER NOT NULL,
	period     INTEGER NOT NULL,
	algorithm  TEXT NOT NULL,
	last_step  INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);

CREATE TABLE devices (
	id          INTEGER PRIMARY KEY,
	mac         TEXT NOT NULL UNIQUE,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	description TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE acct_sessions (
	id              INTEGER PRIMARY KEY,
	client          TEXT NOT NULL,
	session_id      TEXT NOT NULL,
	user_name       TEXT NOT NULL DEFAULT '',
	calling_station TEXT NOT NULL DEFAULT '',
	nas_address     TEXT NOT NULL DEFAULT '',
	framed_address  TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL,
	started_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	stopped_at      INTEGER,
	session_time    INTEGER NOT NULL DEFAULT 0,
	input_octets    INTEGER NOT NULL DEFAULT 0,
	output_octets   INTEGER NOT NULL DEFAULT 0,
	terminate_cause TEXT NOT NULL DEFAULT '',
	UNIQUE (client, session_id)
);
CREATE INDEX acct_sessions_user ON acct_sessions(user_name);

-- The audit chain: each row's hash covers the previous row's hash.
CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	kind      TEXT NOT NULL,
	door      TEXT NOT NULL DEFAULT '',
	client    TEXT NOT NULL DEFAULT '',
	user_name TEXT NOT NULL DEFAULT '',
	device    TEXT NOT NULL DEFAULT '',
	source    TEXT NOT NULL DEFAULT '',
	outcome   TEXT NOT NULL DEFAULT '',
	reason    TEXT NOT NULL DEFAULT '',
	actor     TEXT NOT NULL DEFAULT '',
	detail    TEXT NOT NULL DEFAULT '',
	prev_hash BLOB NOT NULL,
	hash      BLOB NOT NULL
);
CREATE INDEX audit_user ON audit(user_name);
