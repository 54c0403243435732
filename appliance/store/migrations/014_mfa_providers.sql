-- Push MFA providers (issue 13, docs/upstreams/duo.md, okta-verify.md):
-- the Duo Auth API applications and Okta orgs the gate sends pushes
-- through, one row each, chosen by name in a client's policy (push).
--
-- kind is duo or okta; settings the kind's JSON (API host and
-- integration key, or org URL); secret Duo's secret key or Okta's API
-- token, sealed like upstream credentials. version changes with every
-- admin change, so the gate rebuilds its client.
CREATE TABLE IF NOT EXISTS mfa_providers (
	name       TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('duo', 'okta')),
	settings   TEXT NOT NULL DEFAULT '{}',
	secret     BLOB,
	version    INTEGER NOT NULL DEFAULT 1,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
