-- Bind-account secrets are only ever compared, so they are kept as an
-- argon2id hash like passwords (issue 16), not sealed. secret_hash holds
-- it; secret (the sealed form) is emptied once a row has its hash. The
-- daemon hashes the rows still sealed at its first start after this
-- migration (it needs the key and the hasher, which SQL has not).
ALTER TABLE bind_accounts ADD COLUMN secret_hash TEXT NOT NULL DEFAULT '';
