-- Device certificates over SCEP (issue 12, docs/scep.md).
--
-- IF NOT EXISTS: the store's tests roll a database back to an earlier
-- version and migrate it again, keeping the tables of later versions.
--
-- device_ca is the appliance's own CA for device certificates (one row):
-- an ECDSA P-256 certificate and its key, sealed with the store's key
-- like the other secrets, and the RSA registration authority (RA) that
-- SCEP needs, since a SCEP request is encrypted to an RSA key. crl_number
-- grows with every CRL the CA signs.
CREATE TABLE IF NOT EXISTS device_ca (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	cert       BLOB NOT NULL,
	key        BLOB NOT NULL,
	ra_cert    BLOB NOT NULL,
	ra_key     BLOB NOT NULL,
	crl_number INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);

-- scep_challenges are challenge passwords, one-time unless the admin
-- chose otherwise (an MDM's static challenge: uses > 1). Only a SHA-256
-- of each is kept (they are 128-bit random, so a fast hash is enough);
-- each request that uses one takes one of uses_left (used_at is the
-- last), and none is accepted after expires_at. device_id names the
-- inventory record the certificate is attached to, when the admin named
-- one; device_name, owner and mac describe a new record otherwise.
CREATE TABLE IF NOT EXISTS scep_challenges (
	id          INTEGER PRIMARY KEY,
	hash        TEXT NOT NULL UNIQUE,
	device_id   INTEGER REFERENCES inventory(id) ON DELETE CASCADE,
	device_name TEXT NOT NULL DEFAULT '',
	owner_name  TEXT NOT NULL DEFAULT '',
	mac         TEXT NOT NULL DEFAULT '',
	validity    INTEGER NOT NULL,
	uses        INTEGER NOT NULL DEFAULT 1,
	uses_left   INTEGER NOT NULL DEFAULT 1,
	created_by  TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	used_at     INTEGER
);

-- scep_certs are the certificates the device CA issued, by serial
-- (lower-case hex, no leading zeros) and fingerprint (selfcert's form).
-- revoked_at is set when one is revoked ('clinicgate cert revoke'); the
-- CRL lists those.
CREATE TABLE IF NOT EXISTS scep_certs (
	serial        TEXT PRIMARY KEY,
	fingerprint   TEXT NOT NULL UNIQUE,
	device_id     INTEGER REFERENCES inventory(id) ON DELETE SET NULL,
	subject       TEXT NOT NULL DEFAULT '',
	not_after     INTEGER NOT NULL,
	issued_at     INTEGER NOT NULL,
	revoked_at    INTEGER,
	revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS scep_certs_revoked ON scep_certs(revoked_at) WHERE revoked_at IS NOT NULL;
