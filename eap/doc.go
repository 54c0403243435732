// Package eap is clinicgate's EAP server (RFC 3748) for the RADIUS door:
// EAP-TTLS with an inner PAP password (RFC 5281), PEAPv0 with EAP-MSCHAPv2
// inside (draft-kamath-pppext-peapv0, MS-PEAP) and EAP-TLS with client
// certificates (RFC 5216, RFC 9190), over TLS 1.2 and TLS 1.3 (RFC 9427).
// It offers each client the methods its policy allows, turns the run of
// Access-Requests of one EAP conversation, tied together by State, into one
// appliance.Request, hands it to the same gate as PAP, and derives the MSK
// for the MPPE keys. For EAP-TLS it verifies the certificate's chain to the
// site's trust anchors, its dates and its CRLs; the gate maps it to a user.
//
// It holds no policy: who may log in, MFA, lockout, the audit and the reply
// attributes are the gate's. It never answers Accept on its own: an Accept
// is only ever the gate's. Its memory is bounded: sessions expire, their
// number is capped, and a message being reassembled is capped at 64 KiB.
package eap
