package radius

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc3079"
	"layeh.com/radius/vendors/microsoft"

	"github.com/clinicgate/clinicgate/appliance"
)

// The MS-CHAPv2 values of these tests: a known password, and the response
// a peer computes for it (RFC 2759 §8.1), with the user name as the peer
// hashes it, without its domain.
const (
	msUser     = "alice"
	msPassword = "clinic Password 1"
	msIdent    = 0x42
)

var (
	msAuthChallenge = bytes.Repeat([]byte{0xa1}, 16)
	msPeerChallenge = []byte("peer challenge!!")
)

func msNTResponse(t testing.TB, password string) []byte {
	t.Helper()
	r, err := rfc2759.GenerateNTResponse(msAuthChallenge, msPeerChallenge, []byte(msUser), []byte(password))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// msResponse is an MS-CHAP2-Response value (RFC 2548 §2.3.2).
func msResponse(ident byte, peer, nt []byte) []byte {
	b := []byte{ident, 0}
	b = append(b, peer...)
	b = append(b, make([]byte, 8)...)
	return append(b, nt...)
}

// mschapRequest is an Access-Request as a VPN gateway sends MS-CHAPv2:
// User-Name as typed, MS-CHAP-Challenge and MS-CHAP2-Response.
func msRequest(t testing.TB, name string, challenge, response []byte) *radius.Packet {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
	if err := rfc2865.UserName_SetString(p, name); err != nil {
		t.Fatal(err)
	}
	p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, msCHAPChallenge, challenge))
	p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, msCHAP2Response, response))
	return p
}

func validMSRequest(t testing.TB, name string) *radius.Packet {
	return msRequest(t, name, msAuthChallenge, msResponse(msIdent, msPeerChallenge, msNTResponse(t, msPassword)))
}

// msProof is what the gate returns on an Accept for msPassword: the
// authenticator response and the RFC 3079 keys (16 bytes, 128-bit).
func msProof(t testing.TB) *appliance.MSCHAPResult {
	t.Helper()
	nt := msNTResponse(t, msPassword)
	s, err := rfc2759.GenerateAuthenticatorResponse(msAuthChallenge, msPeerChallenge, nt, []byte(msUser), []byte(msPassword))
	if err != nil {
		t.Fatal(err)
	}
	recv, err := rfc3079.MakeKey(nt, []byte(msPassword), false)
	if err != nil {
		t.Fatal(err)
	}
	send, err := rfc3079.MakeKey(nt, []byte(msPassword), true)
	if err != nil {
		t.Fatal(err)
	}
	return &appliance.MSCHAPResult{AuthenticatorResponse: s, RecvKey: recv, SendKey: send}
}

func TestMSCHAPv2RequestReachesTheGate(t *testing.T) {
	for _, name := range []string{"alice", `CLINIC\alice`} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			b := signed(t, validMSRequest(t, name), testSecret)
			mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			req := f.onlyCall(t)
			if req.Method != appliance.MethodMSCHAPv2 || req.Invalid != "" {
				t.Fatalf("got method %q invalid %q (%q), want mschapv2 and valid", req.Method, req.Invalid, req.Notes)
			}
			if req.User != "alice" {
				t.Errorf("got User %q, want alice (without the domain)", req.User)
			}
			if len(req.Password) != 0 {
				t.Errorf("got a password %q with MS-CHAPv2", req.Password)
			}
			m := req.MSCHAP
			if m == nil {
				t.Fatal("no MSCHAP in the request")
			}
			want := appliance.MSCHAPv2{Ident: msIdent, Name: name}
			copy(want.AuthenticatorChallenge[:], msAuthChallenge)
			copy(want.PeerChallenge[:], msPeerChallenge)
			copy(want.NTResponse[:], msNTResponse(t, msPassword))
			if *m != want {
				t.Errorf("got %+v, want %+v", *m, want)
			}
		})
	}
}

// Several of either attribute, or one of the wrong length, is a broken
// request: refused as bad_request, never guessed at.
func TestMSCHAPv2StrictLengths(t *testing.T) {
	resp := func(t testing.TB) []byte { return msResponse(msIdent, msPeerChallenge, msNTResponse(t, msPassword)) }
	for _, tc := range []struct {
		name  string
		build func(t *testing.T) *radius.Packet
	}{
		{"challenge of 15", func(t *testing.T) *radius.Packet { return msRequest(t, msUser, msAuthChallenge[:15], resp(t)) }},
		{"challenge of 17", func(t *testing.T) *radius.Packet {
			return msRequest(t, msUser, append(slices.Clone(msAuthChallenge), 0), resp(t))
		}},
		{"response of 49", func(t *testing.T) *radius.Packet { return msRequest(t, msUser, msAuthChallenge, resp(t)[:49]) }},
		{"response of 51", func(t *testing.T) *radius.Packet {
			return msRequest(t, msUser, msAuthChallenge, append(resp(t), 0))
		}},
		{"two challenges", func(t *testing.T) *radius.Packet {
			p := validMSRequest(t, msUser)
			p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, msCHAPChallenge, msAuthChallenge))
			return p
		}},
		{"two responses", func(t *testing.T) *radius.Packet {
			p := validMSRequest(t, msUser)
			p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, msCHAP2Response, resp(t)))
			return p
		}},
		{"two responses in one VSA", func(t *testing.T) *radius.Packet {
			p := validMSRequest(t, msUser)
			v := vsa(vendorMicrosoft, msCHAP2Response, resp(t))
			p.Attributes[len(p.Attributes)-1].Attribute = append(v, attr(msCHAP2Response, resp(t))...)
			return p
		}},
		{"response without challenge", func(t *testing.T) *radius.Packet {
			p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
			rfc2865.UserName_SetString(p, msUser)
			p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, msCHAP2Response, resp(t)))
			return p
		}},
		{"sub-attribute longer than its VSA", func(t *testing.T) *radius.Packet {
			p := validMSRequest(t, msUser)
			v := vsa(vendorMicrosoft, msCHAP2Response, resp(t))
			v[5] = 60
			p.Attributes[len(p.Attributes)-1].Attribute = v
			return p
		}},
		{"with an MS-CHAPv1 response", func(t *testing.T) *radius.Packet {
			p := validMSRequest(t, msUser)
			p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, msCHAPResponse, make([]byte, 50)))
			return p
		}},
		{"with a User-Password", func(t *testing.T) *radius.Packet {
			p := validMSRequest(t, msUser)
			p.Add(rfc2865.UserPassword_Type, hidePassword([]byte(msPassword), []byte(testSecret), p.Authenticator[:]))
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			b := signed(t, tc.build(t), testSecret)
			resp := mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			req := f.onlyCall(t)
			if req.Invalid != appliance.ReasonBadRequest || len(req.Notes) == 0 {
				t.Errorf("got Invalid %q notes %q, want bad_request with a note", req.Invalid, req.Notes)
			}
			if req.MSCHAP != nil {
				t.Errorf("a broken request was handed on as MS-CHAPv2: %+v", req.MSCHAP)
			}
			if len(microsoftValues(resp, 26)) != 0 {
				t.Error("a Reject of a broken request carries MS-CHAP2-Success")
			}
		})
	}
}

// MS-CHAPv1 (an MS-CHAP-Response without MS-CHAP2-Response) is still
// handed to the gate as mschap, which refuses it as auth_unsupported.
func TestMSCHAPv1StillRefusedAsBefore(t *testing.T) {
	f := newFixture(t)
	p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
	rfc2865.UserName_SetString(p, msUser)
	p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, msCHAPChallenge, bytes.Repeat([]byte{1}, 8)))
	p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, msCHAPResponse, bytes.Repeat([]byte{2}, 50)))
	b := signed(t, p, testSecret)
	mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
	if req := f.onlyCall(t); req.Method != appliance.MethodMSCHAP || req.MSCHAP != nil || req.Invalid != "" {
		t.Fatalf("got method %q MSCHAP %v invalid %q, want mschap for the gate to refuse", req.Method, req.MSCHAP, req.Invalid)
	}
}

// microsoftValues returns the values of the Microsoft sub-attributes of
// type typ in p.
func microsoftValues(p *radius.Packet, typ byte) [][]byte {
	var out [][]byte
	for _, v := range all(p, rfc2865.VendorSpecific_Type) {
		if len(v) >= 6 && v[:4] == "\x00\x00\x01\x37" && v[4] == typ && int(v[5]) == len(v)-4 {
			out = append(out, []byte(v[6:]))
		}
	}
	return out
}

func TestMSCHAPv2AcceptCarriesSuccessAndKeys(t *testing.T) {
	f := newFixture(t)
	proof := msProof(t)
	f.gate.decision = appliance.Decision{Outcome: appliance.Accept, Reason: appliance.ReasonOK, User: "alice",
		Attributes: appliance.Attributes{VLAN: 30, SessionTimeout: 28800}, MSCHAP: proof}
	// A RADIUS upstream's own MS-CHAP2-Success and keys (encrypted with
	// its secret) must not pass beside clinicgate's.
	f.gate.decision.Passthrough = slices.Grow(f.gate.decision.Passthrough, 1)[:1]
	f.gate.decision.Passthrough[0].Type, f.gate.decision.Passthrough[0].Value = 26, vsa(vendorMicrosoft, 17, bytes.Repeat([]byte{9}, 34))
	p := validMSRequest(t, `CLINIC\alice`)
	b := signed(t, p, testSecret)
	reply := f.auth(t, b)
	resp := mustReply(t, reply, b, radius.CodeAccessAccept)

	success := microsoftValues(resp, 26)
	if len(success) != 1 || success[0][0] != msIdent || string(success[0][1:]) != proof.AuthenticatorResponse {
		t.Fatalf("got MS-CHAP2-Success %q, want the Ident then %s", success, proof.AuthenticatorResponse)
	}
	// The peer's own check (RFC 2759 §8.7): S= is what it computes.
	want, _ := rfc2759.GenerateAuthenticatorResponse(msAuthChallenge, msPeerChallenge, msNTResponse(t, msPassword), []byte(msUser), []byte(msPassword))
	if string(success[0][1:]) != want {
		t.Fatalf("got %q, want %q", success[0][1:], want)
	}
	// The keys, decrypted with layeh's helpers (salt, secret, Request
	// Authenticator) and with the RFC's own steps (eap_test.go).
	req, err := radius.Parse(b, []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	recv, err := microsoft.MSMPPERecvKey_Lookup(resp, req)
	if err != nil || !bytes.Equal(recv, proof.RecvKey) {
		t.Fatalf("got MS-MPPE-Recv-Key %x (%v), want %x", recv, err, proof.RecvKey)
	}
	send, err := microsoft.MSMPPESendKey_Lookup(resp, req)
	if err != nil || !bytes.Equal(send, proof.SendKey) {
		t.Fatalf("got MS-MPPE-Send-Key %x (%v), want %x", send, err, proof.SendKey)
	}
	keys := map[byte][]byte{}
	for _, v := range all(resp, rfc2865.VendorSpecific_Type) {
		if v[4] == 16 || v[4] == 17 {
			typ, key := mppeKey(t, []byte(v), req.Authenticator[:])
			if _, dup := keys[typ]; dup {
				t.Fatalf("vendor type %d twice: an upstream's key passed through", typ)
			}
			keys[typ] = key
		}
	}
	if !bytes.Equal(keys[17], proof.RecvKey) || !bytes.Equal(keys[16], proof.SendKey) {
		t.Fatalf("the RFC's decryption gives %x, want Recv %x Send %x", keys, proof.RecvKey, proof.SendKey)
	}
	if got := microsoft.MSMPPEEncryptionPolicy_Get(resp); got != microsoft.MSMPPEEncryptionPolicy_Value_EncryptionAllowed {
		t.Errorf("got MS-MPPE-Encryption-Policy %v, want 1 (allowed)", got)
	}
	if got := microsoft.MSMPPEEncryptionTypes_Get(resp); got != microsoft.MSMPPEEncryptionTypes_Value_RC440or128BitAllowed {
		t.Errorf("got MS-MPPE-Encryption-Types %v, want 6 (40 or 128 bit)", got)
	}
	if got := rfc2865.UserName_GetString(resp); got != "alice" {
		t.Errorf("got User-Name %q, want alice", got)
	}
	if got := all(resp, rfc2868.TunnelPrivateGroupID_Type); !slices.Equal(got, []string{"30"}) || rfc2865.SessionTimeout_Get(resp) != 28800 {
		t.Errorf("got VLAN %q Session-Timeout %d, want 30 and 28800", got, rfc2865.SessionTimeout_Get(resp))
	}
	if len(microsoftValues(resp, 2)) != 0 {
		t.Error("an Accept carries MS-CHAP-Error")
	}
	// A retransmit is answered from the reply cache, byte for byte,
	// without a second decision.
	if again := f.auth(t, b); !bytes.Equal(again, reply) {
		t.Fatal("a retransmit got another answer")
	}
	f.onlyCall(t)
}

// An Accept the peer could not check (no authenticator response, or no
// keys) is never sent: the peer would drop the link anyway, and a VPN
// without keys has no encryption.
func TestMSCHAPv2AcceptWithoutProofIsRejected(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proof *appliance.MSCHAPResult
	}{
		{"none", nil},
		{"no S=", &appliance.MSCHAPResult{RecvKey: make([]byte, 16), SendKey: make([]byte, 16)}},
		{"S= too short", &appliance.MSCHAPResult{AuthenticatorResponse: "S=0123", RecvKey: make([]byte, 16), SendKey: make([]byte, 16)}},
		{"no keys", &appliance.MSCHAPResult{AuthenticatorResponse: "S=" + strings.Repeat("AB", 20)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.gate.decision = appliance.Decision{Outcome: appliance.Accept, Reason: appliance.ReasonOK, User: "alice", MSCHAP: tc.proof}
			b := signed(t, validMSRequest(t, msUser), testSecret)
			resp := mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			if e := microsoftValues(resp, 2); len(e) != 1 || !strings.HasPrefix(string(e[0][1:]), "E=691 ") {
				t.Fatalf("got MS-CHAP-Error %q, want E=691", e)
			}
			if len(microsoftValues(resp, 16))+len(microsoftValues(resp, 17))+len(microsoftValues(resp, 26)) != 0 {
				t.Fatal("the Reject carries keys or MS-CHAP2-Success")
			}
		})
	}
}

func TestMSCHAPv2RejectCarriesError(t *testing.T) {
	for _, tc := range []struct {
		reason appliance.Reason
		msg    string
		code   int
	}{
		{appliance.ReasonBadPassword, appliance.MsgDenied, 691},
		{appliance.ReasonNTHashMissing, appliance.MsgDenied, 691},
		{appliance.ReasonUnknownUser, appliance.MsgDenied, 691},
		{appliance.ReasonOutsideHours, appliance.MsgOutsideHours, 646},
		{appliance.ReasonDisabled, appliance.MsgDisabled, 647},
		{appliance.ReasonExpired, appliance.MsgExpired, 647},
		{appliance.ReasonPasswordExpired, appliance.MsgPwExpired, 648},
		{appliance.ReasonMustChange, appliance.MsgPwExpired, 648},
		{appliance.ReasonGroupNotAllowed, appliance.MsgNotAllowed, 649},
		{appliance.ReasonMethodNotAllowed, appliance.MsgDenied, 649},
		// Before the password is verified, a locked account reads as any
		// refusal: the code must not tell it apart.
		{appliance.ReasonLockedOut, appliance.MsgDenied, 691},
		{appliance.ReasonMFAUnavailable, appliance.MsgNotEnrolled, 691},
	} {
		t.Run(string(tc.reason), func(t *testing.T) {
			f := newFixture(t)
			f.gate.decision = appliance.Decision{Outcome: appliance.Reject, Reason: tc.reason, Message: tc.msg}
			b := signed(t, validMSRequest(t, msUser), testSecret)
			resp := mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			e := microsoftValues(resp, 2)
			want := fmt.Sprintf("E=%d R=0 C=%X V=3 M=%s", tc.code, msAuthChallenge, tc.msg)
			if len(e) != 1 || e[0][0] != msIdent || string(e[0][1:]) != want {
				t.Fatalf("got MS-CHAP-Error %q, want Ident %#x then %q", e, msIdent, want)
			}
			if got := rfc2865.ReplyMessage_GetString(resp); got != tc.msg {
				t.Errorf("got Reply-Message %q, want %q", got, tc.msg)
			}
		})
	}
}

// MS-CHAPv2 cannot carry a code: a challenge from the gate is answered as
// a Reject, never as an Access-Challenge the peer cannot answer.
func TestMSCHAPv2ChallengeAnsweredAsReject(t *testing.T) {
	f := newFixture(t)
	f.gate.decision = appliance.Decision{Outcome: appliance.Challenge, Reason: appliance.ReasonMFAChallenge, Message: appliance.MsgEnterCode, State: []byte("state")}
	b := signed(t, validMSRequest(t, msUser), testSecret)
	resp := mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
	if len(rfc2865.State_Get(resp)) != 0 || len(microsoftValues(resp, 2)) != 1 {
		t.Fatal("the Reject carries a State, or no MS-CHAP-Error")
	}
}

// Message-Authenticator is required of MS-CHAPv2 as of PAP, and relaxed
// the same way for old hardware (and the audit says so).
func TestMSCHAPv2MessageAuthenticatorAsForPAP(t *testing.T) {
	f := newFixture(t)
	b := encode(t, validMSRequest(t, msUser))
	if reply := f.auth(t, b); reply != nil {
		t.Fatal("an MS-CHAPv2 request without Message-Authenticator was answered")
	}
	if got := f.dropped("message_authenticator_missing"); got != 1 {
		t.Fatalf("got %v drops, want 1", got)
	}
	f.relax()
	mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
	if req := f.onlyCall(t); !slices.Contains(req.Notes, "message_authenticator_absent") || req.MSCHAP == nil {
		t.Fatalf("relaxed: got notes %q MSCHAP %v", req.Notes, req.MSCHAP)
	}
}
