-- Audit forwarding to the clinic's syslog collector (issue 16, docs/audit.md).
-- audit_forward is the one collector's settings: its address, the CA that
-- must have issued its certificate, and an optional client certificate
-- whose key is sealed like the other secrets. audit_forward_state is the
-- durable queue cursor: every entry up to sent_seq has reached the
-- collector's TCP stack, so after a restart sending resumes from the
-- audit table itself (the table is the queue; nothing is held in memory).
-- The rest of the row is the forwarder's state for `audit forward show`
-- and the console, written by the daemon.
CREATE TABLE audit_forward (
	id                 INTEGER PRIMARY KEY CHECK (id = 1),
	address            TEXT NOT NULL,
	ca_pem             TEXT NOT NULL,
	cert_pem           TEXT NOT NULL DEFAULT '',
	key_sealed         BLOB,
	checkpoint_seconds INTEGER NOT NULL DEFAULT 600,
	enabled            INTEGER NOT NULL DEFAULT 1,
	updated            INTEGER NOT NULL
);
CREATE TABLE audit_forward_state (
	id             INTEGER PRIMARY KEY CHECK (id = 1),
	sent_seq       INTEGER NOT NULL DEFAULT 0,
	sent_at        INTEGER NOT NULL DEFAULT 0,
	connected      INTEGER NOT NULL DEFAULT 0,
	last_error     TEXT NOT NULL DEFAULT '',
	checkpoint_seq INTEGER NOT NULL DEFAULT 0,
	checkpoint_at  INTEGER NOT NULL DEFAULT 0,
	state_at       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO audit_forward_state (id) VALUES (1);
