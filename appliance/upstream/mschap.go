package upstream

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/vendors/microsoft"
)

// MSCHAPv2 is an MS-CHAPv2 response for an upstream to check (RFC 2759).
type MSCHAPv2 struct {
	// Name is the user name the peer hashed into its response, exactly as
	// sent (it may carry a DOMAIN\ prefix, which NPS wants to see).
	Name                   string
	AuthenticatorChallenge [16]byte
	PeerChallenge          [16]byte
	NTResponse             [24]byte
	Ident                  byte
}

// MSCHAPProof is what an upstream that verified an MS-CHAPv2 response
// hands back: the proof for the peer that the server knew the password,
// and the MPPE keys (RFC 2548, from the server's side; nil when the
// upstream sent none).
type MSCHAPProof struct {
	AuthenticatorResponse string // "S=" and 40 upper-case hex digits
	RecvKey, SendKey      []byte
}

// MSCHAPVerifier is implemented by connectors whose server checks
// MS-CHAPv2 itself (a RADIUS server such as NPS or FreeRADIUS). The errors
// are Verify's: ErrBadCredentials for a wrong response.
type MSCHAPVerifier interface {
	VerifyMSCHAPv2(ctx context.Context, user string, m MSCHAPv2) (Identity, MSCHAPProof, error)
}

// MSCHAPOf returns v as an MSCHAPVerifier when its server can check
// MS-CHAPv2 (a registry's connector keeps recording its health).
func MSCHAPOf(v Verifier) (MSCHAPVerifier, bool) {
	if t, ok := v.(tracked); ok {
		m, ok := t.Verifier.(MSCHAPVerifier)
		if !ok {
			return nil, false
		}
		return trackedMSCHAP{t: t, m: m}, true
	}
	m, ok := v.(MSCHAPVerifier)
	return m, ok
}

type trackedMSCHAP struct {
	t tracked
	m MSCHAPVerifier
}

func (t trackedMSCHAP) VerifyMSCHAPv2(ctx context.Context, user string, m MSCHAPv2) (Identity, MSCHAPProof, error) {
	id, p, err := t.m.VerifyMSCHAPv2(ctx, user, m)
	t.t.r.record(t.t.e, err)
	return id, p, err
}

// VerifyMSCHAPv2 relays an MS-CHAPv2 response (RFC 2548 §2.3): User-Name
// as the peer hashed it, MS-CHAP-Challenge and MS-CHAP2-Response, signed
// with Message-Authenticator. An Access-Accept must carry MS-CHAP2-Success;
// its MS-MPPE keys are decrypted with the shared secret and the request's
// authenticator. An Access-Reject (with or without MS-CHAP-Error) is a
// wrong response, unless its error code says the account is disabled or
// the password expired.
func (r *RADIUS) VerifyMSCHAPv2(ctx context.Context, user string, m MSCHAPv2) (Identity, MSCHAPProof, error) {
	name := m.Name
	if name == "" {
		name = user
	}
	resp := make([]byte, 50)
	resp[0] = m.Ident
	copy(resp[2:18], m.PeerChallenge[:])
	copy(resp[26:50], m.NTResponse[:])
	pkt, req, err := r.ask(ctx, func(p *radius.Packet) error {
		if err := rfc2865.UserName_SetString(p, name); err != nil {
			return ErrBadCredentials
		}
		if err := microsoft.MSCHAPChallenge_Set(p, m.AuthenticatorChallenge[:]); err != nil {
			return err
		}
		return microsoft.MSCHAP2Response_Set(p, resp)
	})
	if err != nil {
		return Identity{}, MSCHAPProof{}, err
	}
	if pkt.Code == radius.CodeAccessReject {
		return Identity{}, MSCHAPProof{}, mschapError(microsoft.MSCHAPError_GetString(pkt))
	}
	success := microsoft.MSCHAP2Success_Get(pkt)
	if len(success) < 43 || success[0] != m.Ident || string(success[1:3]) != "S=" {
		return Identity{}, MSCHAPProof{}, fmt.Errorf("%w: %s accepted the MS-CHAPv2 response without a usable MS-CHAP2-Success, so the peer could not trust the answer", ErrUpstreamRefused, r.name)
	}
	if _, err := hex.DecodeString(string(success[3:43])); err != nil {
		return Identity{}, MSCHAPProof{}, fmt.Errorf("%w: %s sent a malformed MS-CHAP2-Success", ErrUpstreamRefused, r.name)
	}
	proof := MSCHAPProof{AuthenticatorResponse: strings.ToUpper(string(success[1:43]))}
	// The keys are hidden with the request's authenticator (RFC 2548
	// §2.4.2); a layeh request packet carries it.
	q := &radius.Packet{Authenticator: [16]byte(req[4:20])}
	pkt.Secret = r.secret
	send, serr := microsoft.MSMPPESendKey_Lookup(pkt, q)
	recv, rerr := microsoft.MSMPPERecvKey_Lookup(pkt, q)
	switch {
	case errors.Is(serr, radius.ErrNoAttribute) && errors.Is(rerr, radius.ErrNoAttribute):
		// A PEAP tunnel's keys come from TLS; a VPN without MPPE needs none.
	case serr != nil || rerr != nil:
		return Identity{}, MSCHAPProof{}, fmt.Errorf("%w: %s sent MPPE keys that do not decrypt with the shared secret", ErrUpstreamRefused, r.name)
	case len(send) < 16 || len(recv) < 16:
		return Identity{}, MSCHAPProof{}, fmt.Errorf("%w: %s sent MPPE keys shorter than 16 bytes", ErrUpstreamRefused, r.name)
	default:
		proof.SendKey, proof.RecvKey = send[:16], recv[:16]
	}
	return Identity{Name: user, Groups: r.groups(pkt), Reply: r.passed(pkt)}, proof, nil
}

// mschapError reads an MS-CHAP-Error ("<ident>E=691 R=0 C=... V=3 M=...",
// RFC 2759 §6) into the connector errors.
func mschapError(text string) error {
	i := strings.Index(text, "E=")
	if i < 0 {
		return ErrBadCredentials
	}
	code, _, _ := strings.Cut(text[i+2:], " ")
	n, err := strconv.Atoi(code)
	if err != nil {
		return ErrBadCredentials
	}
	switch n {
	case 647: // ERROR_ACCOUNT_DISABLED
		return ErrAccountDisabled
	case 648: // ERROR_PASSWD_EXPIRED
		return ErrPasswordExpired
	case 646: // ERROR_RESTRICTED_LOGON_HOURS
		return fmt.Errorf("%w: the server refuses this account at this time (MS-CHAP error 646, logon hours)", ErrUpstreamRefused)
	}
	return ErrBadCredentials
}
