// Package ldapproxy is clinicgate's LDAP door for EHR and practice-management
// systems: it answers binds through appliance.Gate (password, MFA, posture,
// audit) and serves searches, either forwarded to the upstream directory or
// from the appliance's own store. It reads and writes LDAP with its own
// message layer, ldapmsg, and runs each connection itself (conn.go): the
// limits on connections, message size, requests in flight and idle time
// live here.
//
// It holds no policy of its own and imports no other door.
package ldapproxy
