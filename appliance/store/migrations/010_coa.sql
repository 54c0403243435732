-- What an RFC 5176 request needs to name a session as the NAS knows it
-- (issue 12, docs/coa.md). nas_identifier and nas_ip_attr are the
-- NAS-Identifier and NAS-IP-Address (or NAS-IPv6-Address) attributes as the
-- NAS's accounting carried them ('' when it sent none): a NAS compares them
-- with its own and refuses a request that names another NAS. station_mac
-- is calling_station in canonical form (aa:bb:cc:dd:ee:ff; '-' when it is
-- not a MAC address), so the CoA worker finds a device's sessions by the
-- inventory's MACs whatever form the NAS wrote them in. Rows written before
-- this migration have it empty; the worker reads those in full.
ALTER TABLE acct_sessions ADD COLUMN nas_identifier TEXT NOT NULL DEFAULT '';
ALTER TABLE acct_sessions ADD COLUMN nas_ip_attr TEXT NOT NULL DEFAULT '';
ALTER TABLE acct_sessions ADD COLUMN station_mac TEXT NOT NULL DEFAULT '';
CREATE INDEX acct_sessions_active_mac ON acct_sessions(station_mac) WHERE status = 'active';
CREATE INDEX acct_sessions_active_user ON acct_sessions(user_name COLLATE NOCASE) WHERE status = 'active';
