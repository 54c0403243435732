// Package vdir is clinicgate's virtual directory: an in-memory, read-only
// tree in the shape Active Directory presents (a domainDNS base, ou=Users and
// ou=Groups, user and group objects with sAMAccountName, userPrincipalName,
// memberOf, member, userAccountControl), together with an LDAP search
// evaluator (RFC 4511 scopes and three-valued filters, plus the AD matching
// rules EHR systems send: bit AND/OR and in-chain).
//
// The directory package (appliance/directory) builds a Tree from the
// appliance's users, and the LDAP door answers searches from it, so EHR
// systems that expect AD can look people up without the appliance exposing
// its store.
//
// It must never modify anything: a Tree is immutable after Build, every
// Search returns copies, and there is no write path. It holds no secrets (no
// password or hash attributes), does no I/O, keeps no global state, and
// imports no door or appliance package; mapping errors to LDAP result codes
// is the caller's job.
package vdir
