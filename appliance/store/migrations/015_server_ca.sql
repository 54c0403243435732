-- The appliance's server CA (issue 16, finding 6; docs/security.md).
--
-- IF NOT EXISTS: the store's tests roll a database back to an earlier
-- version and migrate it again, keeping the tables of later versions.
--
-- server_ca is the CA that issues the appliance's own TLS server
-- certificates (the LDAP door's, the EAP server's): one row, an ECDSA
-- P-256 certificate with name constraints and its key, sealed with the
-- store's key like the other secrets. The certificates it issues are
-- leaves kept as files in the data directory; an EHR or a Wi-Fi profile
-- trusts this CA, so a leaf can be renewed without touching them, and a
-- leaf's key (a file) cannot sign anything.
CREATE TABLE IF NOT EXISTS server_ca (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	cert       BLOB NOT NULL,
	key        BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
