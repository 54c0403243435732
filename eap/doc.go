// Package eap is clinicgate's EAP server (RFC 3748) for the RADIUS door:
// EAP-TTLS (RFC 5281) with an inner PAP password, over TLS 1.2 and TLS 1.3
// (RFC 9427). It turns the run of Access-Requests of one EAP conversation,
// tied together by State, into one appliance.Request and hands it to the
// same gate as PAP; it derives the MSK for the MPPE keys.
//
// It holds no policy: who may log in, MFA, lockout, the audit and the reply
// attributes are the gate's. It never answers Accept on its own: an Accept
// is only ever the gate's. Its memory is bounded: sessions expire, their
// number is capped, and a message being reassembled is capped at 64 KiB.
package eap
