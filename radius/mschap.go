package radius

// MS-CHAPv2 without EAP (RFC 2759 carried in RADIUS as RFC 2548 says), as
// VPN gateways send it: the door reads the challenge and the response,
// the gate verifies them (a kept NT hash, or a RADIUS upstream) and
// returns the proof the peer checks and the MPPE keys; the door writes
// MS-CHAP2-Success and the keys, or MS-CHAP-Error.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/vendors/microsoft"

	"github.com/clinicgate/clinicgate/appliance"
)

// Microsoft vendor attribute types (RFC 2548 §2).
const (
	msCHAPResponse  = 1  // MS-CHAP-Response: MS-CHAPv1
	msCHAPChallenge = 11 // 16 octets for MS-CHAPv2 (RFC 2548 §2.3.2)
	msCHAP2Response = 25
)

// msCHAP2ResponseLen is Ident, Flags, Peer-Challenge (16), Reserved (8)
// and NT-Response (24) (RFC 2548 §2.3.2).
const msCHAP2ResponseLen = 50

// msAttrs are the MS-CHAP attributes of a request's Microsoft VSAs.
type msAttrs struct {
	challenges, v2, v1 [][]byte
	// malformed: a Microsoft VSA whose sub-attributes do not add up.
	malformed bool
}

// microsoftAttrs reads every Microsoft VSA of pkt. One VSA may carry
// several sub-attributes (RFC 2865 §5.26 allows it), so each is walked.
func microsoftAttrs(pkt *radius.Packet) msAttrs {
	var ms msAttrs
	for _, a := range pkt.Attributes {
		if a.Type != rfc2865.VendorSpecific_Type || len(a.Attribute) < 4 || binary.BigEndian.Uint32(a.Attribute) != vendorMicrosoft {
			continue
		}
		b := a.Attribute[4:]
		if len(b) == 0 {
			ms.malformed = true
		}
		for len(b) > 0 {
			if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
				ms.malformed = true
				break
			}
			typ, val := b[0], b[2:b[1]]
			switch typ {
			case msCHAPChallenge:
				ms.challenges = append(ms.challenges, val)
			case msCHAP2Response:
				ms.v2 = append(ms.v2, val)
			case msCHAPResponse:
				ms.v1 = append(ms.v1, val)
			}
			b = b[b[1]:]
		}
	}
	return ms
}

// mschapRequest completes req (one User-Name, name) for a request that
// carries Microsoft VSAs. With an MS-CHAP2-Response it is MS-CHAPv2, read
// strictly: one challenge of 16 octets, one response of 50, nothing else
// that claims to be a password. Without one it stays MethodMSCHAP
// (MS-CHAPv1 and the like), which the gate refuses as before.
func mschapRequest(req *appliance.Request, pkt *radius.Packet, name string, passwords int) {
	ms := microsoftAttrs(pkt)
	if len(ms.v2) == 0 {
		req.Method = appliance.MethodMSCHAP
		if ms.malformed {
			req.Invalid = appliance.ReasonBadRequest
			req.Notes = append(req.Notes, "a Microsoft Vendor-Specific attribute with broken lengths")
		}
		return
	}
	req.Method = appliance.MethodMSCHAPv2
	bad := ""
	switch {
	case ms.malformed:
		bad = "a Microsoft Vendor-Specific attribute with broken lengths"
	case len(ms.v2) > 1:
		bad = fmt.Sprintf("%d MS-CHAP2-Response attributes", len(ms.v2))
	case len(ms.challenges) != 1:
		bad = fmt.Sprintf("%d MS-CHAP-Challenge attributes with an MS-CHAP2-Response", len(ms.challenges))
	case len(ms.challenges[0]) != 16:
		bad = fmt.Sprintf("an MS-CHAP-Challenge of %d bytes, not 16", len(ms.challenges[0]))
	case len(ms.v2[0]) != msCHAP2ResponseLen:
		bad = fmt.Sprintf("an MS-CHAP2-Response of %d bytes, not %d", len(ms.v2[0]), msCHAP2ResponseLen)
	case len(ms.v1) > 0 || passwords > 0:
		bad = "an MS-CHAP2-Response beside another password attribute"
	}
	if bad != "" {
		req.Invalid = appliance.ReasonBadRequest
		req.Notes = append(req.Notes, bad)
		return
	}
	resp := ms.v2[0]
	m := &appliance.MSCHAPv2{Ident: resp[0], Name: name}
	copy(m.AuthenticatorChallenge[:], ms.challenges[0])
	copy(m.PeerChallenge[:], resp[2:18])
	// resp[18:26] is Reserved and resp[1] Flags: both must be zero, and
	// are ignored, as a receiver of reserved fields does.
	copy(m.NTResponse[:], resp[26:50])
	req.MSCHAP = m
	// The account is the name without the Windows domain (RFC 2759 §4
	// hashes it so too); the gate keeps the name as sent for the response.
	if _, user, ok := strings.Cut(name, `\`); ok {
		req.User = user
	}
}

// authResponseRE is RFC 2759 §8.7's authenticator response.
var authResponseRE = regexp.MustCompile(`^S=[0-9A-F]{40}$`)

var errNoProof = errors.New("the gate accepted an MS-CHAPv2 login without the authenticator response and MPPE keys the peer needs")

// provesPassword reports whether an MS-CHAPv2 Accept carries what the
// peer checks (the authenticator response) and the keys it encrypts with.
func provesPassword(r *appliance.MSCHAPResult) bool {
	return r != nil && authResponseRE.MatchString(r.AuthenticatorResponse) &&
		len(r.RecvKey) > 0 && len(r.RecvKey) <= 64 && len(r.SendKey) > 0 && len(r.SendKey) <= 64
}

// encodeMSCHAP writes the gate's decision on an MS-CHAPv2 request: an
// Accept with MS-CHAP2-Success, the MPPE keys (salt-encrypted with the
// shared secret and the Request Authenticator, RFC 2548 §2.4.2/§2.4.3),
// the encryption policy and types, and the gate's User-Name, VLAN and
// Session-Timeout; a Reject with MS-CHAP-Error (RFC 2759 §6) and
// Reply-Message. MS-CHAPv2 has no challenge round, so a Challenge is
// answered as a Reject. An Accept without the proof is never sent: it
// becomes a Reject, and errNoProof says why.
func encodeMSCHAP(pkt *radius.Packet, m *appliance.MSCHAPv2, d appliance.Decision) ([]byte, error) {
	var fault error
	if d.Outcome == appliance.Accept && !provesPassword(d.MSCHAP) {
		fault = errNoProof
		d.Reason, d.Message = appliance.ReasonInternal, appliance.MsgDenied
	}
	if d.Outcome != appliance.Accept || fault != nil {
		d.Outcome, d.State = appliance.Reject, nil
	}
	reply, err := encodeDecisionWith(pkt, d, func(resp *radius.Packet) error {
		if d.Outcome != appliance.Accept {
			return microsoft.MSCHAPError_Add(resp, mschapError(m, d))
		}
		r := d.MSCHAP
		if err := microsoft.MSCHAP2Success_Add(resp, append([]byte{m.Ident}, r.AuthenticatorResponse...)); err != nil {
			return err
		}
		if err := microsoft.MSMPPERecvKey_Add(resp, r.RecvKey); err != nil {
			return err
		}
		if err := microsoft.MSMPPESendKey_Add(resp, r.SendKey); err != nil {
			return err
		}
		if err := microsoft.MSMPPEEncryptionPolicy_Add(resp, microsoft.MSMPPEEncryptionPolicy_Value_EncryptionAllowed); err != nil {
			return err
		}
		if err := microsoft.MSMPPEEncryptionTypes_Add(resp, microsoft.MSMPPEEncryptionTypes_Value_RC440or128BitAllowed); err != nil {
			return err
		}
		if d.User != "" {
			return rfc2865.UserName_SetString(resp, d.User)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return reply, fault
}

// MS-CHAP error codes (RFC 2759 §6).
const (
	errRestrictedHours = 646
	errAccountDisabled = 647
	errPasswordExpired = 648
	errNoPermission    = 649
	errAuthFailure     = 691
)

// mschapError is the MS-CHAP-Error value: the response's Ident, then
// "E=691 R=0 C=<challenge> V=3 M=<message>". R=0: no retry, the peer
// starts again. A code other than 691 tells what the gate's message
// already tells: the gate words every refusal alike ("Access denied.")
// until the password has been verified, and then only is the code more
// precise, so it reveals nothing more about the account. A method the
// client does not allow is about the client, not the account.
func mschapError(m *appliance.MSCHAPv2, d appliance.Decision) []byte {
	code := errAuthFailure
	verified := d.Message != "" && d.Message != appliance.MsgDenied
	switch {
	case d.Reason == appliance.ReasonMethodNotAllowed:
		code = errNoPermission
	case !verified:
	case d.Reason == appliance.ReasonOutsideHours:
		code = errRestrictedHours
	case d.Reason == appliance.ReasonDisabled, d.Reason == appliance.ReasonExpired, d.Reason == appliance.ReasonLockedOut:
		code = errAccountDisabled
	case d.Reason == appliance.ReasonPasswordExpired, d.Reason == appliance.ReasonMustChange:
		code = errPasswordExpired
	case d.Reason == appliance.ReasonGroupNotAllowed, d.Reason == appliance.ReasonNotAllowedNet:
		code = errNoPermission
	}
	msg := d.Message
	if msg == "" {
		msg = appliance.MsgDenied
	}
	s := fmt.Sprintf("E=%d R=0 C=%X V=3 M=%s", code, m.AuthenticatorChallenge[:], msg)
	// A Vendor-Specific holds 247 octets of value, the Ident one of them.
	if len(s) > 246 {
		s = s[:246]
	}
	return append([]byte{m.Ident}, s...)
}
