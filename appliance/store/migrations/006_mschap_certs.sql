-- MS-CHAPv2 and EAP-TLS (issue 11).
--
-- nt_hashes keeps, for users who may log in with MS-CHAPv2, the NT hash
-- (MD4 of the UTF-16LE password), sealed with the store's key bound to the
-- user's id. It is kept only where a client allows MS-CHAPv2; see
-- docs/mschap.md for why it is weaker than the argon2id hash.
CREATE TABLE nt_hashes (
	user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	hash       BLOB NOT NULL,
	updated_at INTEGER NOT NULL
);

-- user_certs registers a client certificate (by SHA-256 fingerprint, in
-- upper-case colon-separated hex) to a user, for EAP-TLS.
CREATE TABLE user_certs (
	fingerprint TEXT PRIMARY KEY,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	created_at  INTEGER NOT NULL
);
CREATE INDEX user_certs_user ON user_certs(user_id);

-- cert_revocations is the appliance's own revocation list: a certificate
-- fingerprint or a serial number (lower-case hex, no leading zeros). It
-- outlives the user the certificate belonged to.
CREATE TABLE cert_revocations (
	kind       TEXT NOT NULL CHECK (kind IN ('fingerprint', 'serial')),
	value      TEXT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	revoked_at INTEGER NOT NULL,
	PRIMARY KEY (kind, value)
);
