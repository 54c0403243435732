-- Public keys of the admins who may open the console over SSH.
CREATE TABLE admin_keys (
	id          INTEGER PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
	public_key  TEXT NOT NULL,
	fingerprint TEXT NOT NULL UNIQUE,
	created_at  INTEGER NOT NULL
);
