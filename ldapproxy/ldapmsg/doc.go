// Package ldapmsg is the LDAP door's own message layer: it frames LDAP
// messages off a connection under a size bound, checks their BER structure,
// decodes the requests the door serves into typed values, and encodes the
// responses it sends (RFC 4511). BER primitives come from
// github.com/go-asn1-ber/asn1-ber, and filters, controls and result codes
// from github.com/go-ldap/ldap/v3.
//
// Why the door owns this layer rather than wrapping an LDAP server library
// (github.com/jimlambrt/gldap v0.1.14, which an earlier version carried as
// a patched copy): that library opens its own listener (Run(addr); there
// is no Serve(net.Listener)), so the door cannot put its per-source and
// total connection limits in front of it; its handlers learn only a
// connection number, never the peer's address or whether TLS protects the
// connection; it reads each message with ber.ReadPacket straight off the
// socket, which accepts any length a message claims up to
// ber.MaxPacketLengthBytes (2 GiB, and a process-wide variable that the
// upstream connectors' LDAP client shares) before anything outside the
// library can see the element tree; and it ends the connection without a
// word on SASL binds, compare, modify DN and abandon (and, after a panic in
// its version check, on an LDAPv2 bind). None of these can be closed from
// outside, so the door reads LDAP itself; docs/ehr-ldap.md lists what the
// door does instead.
//
// The package does no I/O beyond reading frames from a bufio.Reader and
// holds no state. It must not decide anything: what a request may do is
// ldapproxy's business.
package ldapmsg
