-- Service accounts an LDAP client (an EHR) binds with before it searches.
-- The secret is sealed, bound to the account's name; networks is a
-- comma-separated list of the prefixes the account may bind from.
CREATE TABLE bind_accounts (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
	secret     BLOB NOT NULL,
	networks   TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
