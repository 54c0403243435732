-- The device inventory (issue 12, docs/posture.md).
--
-- A device is one record of one source: a MAC address bound by hand
-- ('manual'), a device an MDM lists ('intune', 'jamf', 'google'), or a
-- device that enrolled a certificate over SCEP ('cert'). The same laptop
-- may have a record in several sources; the gate reads them together.
--
-- compliance is what the source said, compliance_reason the source's own
-- words; synced_at is when this appliance last read the record from its
-- source (stale after the client's grace period); last_seen is when the
-- device last checked in with its MDM. An override (set by an admin, with
-- an expiry, audited) replaces the source's compliance until it expires.
--
-- The hand-bound MAC addresses of 001's devices table become 'manual'
-- records, one per address, owned by the same user.
CREATE TABLE inventory (
	id                INTEGER PRIMARY KEY,
	source            TEXT NOT NULL CHECK (source IN ('manual', 'intune', 'jamf', 'google', 'cert')),
	source_id         TEXT NOT NULL,
	name              TEXT NOT NULL DEFAULT '',
	serial            TEXT NOT NULL DEFAULT '',
	owner_id          INTEGER REFERENCES users(id) ON DELETE SET NULL,
	owner_name        TEXT NOT NULL DEFAULT '',
	shared            INTEGER NOT NULL DEFAULT 0,
	compliance        TEXT NOT NULL DEFAULT 'unknown' CHECK (compliance IN ('compliant', 'noncompliant', 'unknown')),
	compliance_reason TEXT NOT NULL DEFAULT '',
	last_seen         INTEGER,
	synced_at         INTEGER,
	override          TEXT CHECK (override IN ('compliant', 'noncompliant')),
	override_until    INTEGER,
	override_by       TEXT NOT NULL DEFAULT '',
	override_reason   TEXT NOT NULL DEFAULT '',
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	UNIQUE (source, source_id)
);
CREATE INDEX inventory_owner ON inventory(owner_id);
CREATE INDEX inventory_serial ON inventory(serial) WHERE serial != '';

-- A device's MAC addresses, canonical (aa:bb:cc:dd:ee:ff). A MAC may
-- belong to records of several sources, and (a source's error) to two
-- records of one source: the gate then sees both.
CREATE TABLE inventory_macs (
	device_id INTEGER NOT NULL REFERENCES inventory(id) ON DELETE CASCADE,
	mac       TEXT NOT NULL,
	kind      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (device_id, mac)
);
CREATE INDEX inventory_macs_mac ON inventory_macs(mac);

-- A device's certificates, by SHA-256 fingerprint (selfcert's form) and
-- serial (lower-case hex, no leading zeros).
CREATE TABLE inventory_certs (
	fingerprint TEXT PRIMARY KEY,
	serial      TEXT NOT NULL,
	device_id   INTEGER NOT NULL REFERENCES inventory(id) ON DELETE CASCADE,
	not_after   INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL
);
CREATE INDEX inventory_certs_device ON inventory_certs(device_id);
CREATE INDEX inventory_certs_serial ON inventory_certs(serial);

INSERT INTO inventory (id, source, source_id, name, owner_id, created_at, updated_at)
	SELECT id, 'manual', mac, description, user_id, created_at, created_at FROM devices;
INSERT INTO inventory_macs (device_id, mac) SELECT id, mac FROM devices;
DROP TABLE devices;

-- posture_events are changes that must end or move sessions at once
-- (RFC 5176): a device turned noncompliant, a certificate revoked, a
-- user disabled. The writer adds one in the transaction that made the
-- change, with the device's MAC addresses as they were (comma-separated),
-- since a removed device's rows are gone; the daemon's CoA worker finds the sessions in acct_sessions,
-- sends Disconnect-Request or CoA, and records what the NAS answered.
CREATE TABLE posture_events (
	id         INTEGER PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('device_noncompliant', 'cert_revoked', 'user_disabled', 'device_removed')),
	device_id  INTEGER,
	user_name  TEXT NOT NULL DEFAULT '',
	macs       TEXT NOT NULL DEFAULT '',
	detail     TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	done_at    INTEGER,
	result     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX posture_events_pending ON posture_events(id) WHERE done_at IS NULL;
CREATE INDEX acct_sessions_station ON acct_sessions(calling_station);
CREATE INDEX acct_sessions_framed ON acct_sessions(framed_address) WHERE framed_address != '';
