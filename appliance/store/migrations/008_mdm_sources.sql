-- MDM sources (issue 12, docs/mdm.md): the device management services the
-- appliance reads its device inventory from, one row each.
--
-- settings is the kind's JSON (tenant, URLs, client id, Jamf's compliance
-- rule); secret the credential (client secret, or Google's service
-- account key), sealed like upstream credentials. interval_s is the time
-- between syncs. The last_* columns and device_count are the outcome of
-- the last sync the daemon ran. sync_request counts requests for a sync
-- now (clinicgate mdm sync NAME); sync_served is the last request a sync
-- began after and sync_done the last one a finished sync served, so the
-- command knows when the sync it asked for is over. version changes with every admin
-- change, so the daemon's syncer rebuilds its connector.
--
-- IF NOT EXISTS: tests that roll back to an older schema re-run the
-- later migrations on a database that may still hold this table.
CREATE TABLE IF NOT EXISTS mdm_sources (
	name              TEXT PRIMARY KEY CHECK (name IN ('intune', 'jamf', 'google')),
	settings          TEXT NOT NULL DEFAULT '{}',
	secret            BLOB,
	interval_s        INTEGER NOT NULL DEFAULT 900,
	enabled           INTEGER NOT NULL DEFAULT 1,
	version           INTEGER NOT NULL DEFAULT 1,
	last_attempt_at   INTEGER,
	last_success_at   INTEGER,
	last_error        TEXT NOT NULL DEFAULT '',
	device_count      INTEGER NOT NULL DEFAULT 0,
	sync_request      INTEGER NOT NULL DEFAULT 0,
	sync_served       INTEGER NOT NULL DEFAULT 0,
	sync_done         INTEGER NOT NULL DEFAULT 0,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL
);
