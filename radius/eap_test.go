package radius

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"slices"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/eap"
)

// withEAP gives the fixture an EAP server with a fresh certificate.
func (f *fixture) withEAP(t *testing.T) {
	t.Helper()
	cp, kp, _, err := eap.EnsureCertificate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := eap.TLSConfig(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	f.s.EAP = &eap.Server{Gate: f.gate, TLS: cfg}
}

// eapIdentity is an Access-Request carrying EAP-Response/Identity "alice"
// (RFC 3748 §5.1), its EAP-Message split after split bytes when split > 0.
func eapIdentity(t *testing.T, split int) *radius.Packet {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
	if err := rfc2865.UserName_SetString(p, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := rfc2865.CallingStationID_SetString(p, "02-00-00-00-00-01"); err != nil {
		t.Fatal(err)
	}
	msg := []byte("\x02\x01\x00\x0a\x01alice")
	if split > 0 {
		p.Add(rfc2869.EAPMessage_Type, radius.Attribute(msg[:split]))
		p.Add(rfc2869.EAPMessage_Type, radius.Attribute(msg[split:]))
	} else {
		p.Add(rfc2869.EAPMessage_Type, radius.Attribute(msg))
	}
	return p
}

// RFC 3579 §3.2: an Access-Request with EAP and no Message-Authenticator is
// discarded, even from a client whose policy lets PAP go without one.
func TestEAPWithoutMessageAuthenticatorDroppedEvenWhenRelaxed(t *testing.T) {
	f := newFixture(t)
	f.withEAP(t)
	f.relax()
	if reply := f.auth(t, encode(t, eapIdentity(t, 0))); reply != nil {
		t.Fatalf("got a reply to an EAP request without Message-Authenticator, want it dropped")
	}
	if n := len(f.gate.calls()); n != 0 {
		t.Fatalf("the gate was asked %d times, want 0", n)
	}
	if got := f.dropped("message_authenticator_missing"); got != 1 {
		t.Fatalf("got %v drops counted as message_authenticator_missing, want 1", got)
	}
}

func TestEAPIdentityAnsweredWithTTLSStart(t *testing.T) {
	for _, split := range []int{0, 3} {
		f := newFixture(t)
		f.withEAP(t)
		b := signed(t, eapIdentity(t, split), testSecret)
		reply := f.auth(t, b)
		resp := mustReply(t, reply, b, radius.CodeAccessChallenge)
		msg, err := rfc2869.EAPMessage_Lookup(resp)
		if err != nil {
			t.Fatal(err)
		}
		// EAP-Request (1), Identifier 2, length 6, type TTLS (21), flags Start.
		if !bytes.Equal(msg, []byte{1, 2, 0, 6, 21, 0x20}) {
			t.Fatalf("split %d: got EAP % x, want an EAP-TTLS Start", split, msg)
		}
		if len(rfc2865.State_Get(resp)) != 16 {
			t.Fatalf("got State % x, want 16 bytes", rfc2865.State_Get(resp))
		}
		if n := len(f.gate.calls()); n != 0 {
			t.Fatalf("the gate was asked %d times before the inner password, want 0", n)
		}
		// A retransmit gets the same answer and opens no second conversation.
		if again := f.auth(t, b); !bytes.Equal(again, reply) {
			t.Fatal("a retransmit got another answer")
		}
		if n := f.s.EAP.Len(); n != 1 {
			t.Fatalf("%d EAP conversations, want 1", n)
		}
	}
}

func TestEAPWithoutServerStillRefused(t *testing.T) {
	f := newFixture(t)
	b := signed(t, eapIdentity(t, 0), testSecret)
	mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
	if req := f.onlyCall(t); req.Method != "eap" {
		t.Fatalf("got method %q, want eap (the gate refuses it)", req.Method)
	}
}

// An EAP-Message with a part missing no longer matches its own length:
// refused through the gate (so audited), never half-read.
func TestEAPMessageMissingAPartRefused(t *testing.T) {
	f := newFixture(t)
	f.withEAP(t)
	p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
	if err := rfc2865.UserName_SetString(p, "alice"); err != nil {
		t.Fatal(err)
	}
	msg := []byte("\x02\x01\x00\x0a\x01alice")
	p.Add(rfc2869.EAPMessage_Type, radius.Attribute(msg[:4]))
	p.Add(rfc2869.EAPMessage_Type, radius.Attribute(msg[7:])) // msg[4:7] lost
	b := signed(t, p, testSecret)
	resp := mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
	if m, _ := rfc2869.EAPMessage_Lookup(resp); !bytes.Equal(m, []byte{4, 1, 0, 4}) {
		t.Fatalf("got EAP % x, want an EAP-Failure", m)
	}
	if req := f.onlyCall(t); req.Invalid != "bad_request" || len(req.Notes) == 0 {
		t.Fatalf("the gate got Invalid %q notes %q, want bad_request with a note", req.Invalid, req.Notes)
	}
	if f.s.EAP.Len() != 0 {
		t.Fatalf("%d EAP conversations, want none", f.s.EAP.Len())
	}
}

// mppeKey reverses RFC 2548 §2.4.2/§2.4.3 by the RFC's text: salt, then
// b(1) = MD5(secret + Request Authenticator + salt), b(i) = MD5(secret +
// c(i-1)); the plaintext is the key's length, the key and padding.
func mppeKey(t *testing.T, vsaValue, reqAuth []byte) (typ byte, key []byte) {
	t.Helper()
	// Vendor-Id (4), vendor type (1), vendor length (1), salt (2), string.
	if len(vsaValue) < 8+16 || binary.BigEndian.Uint32(vsaValue) != vendorMicrosoft || int(vsaValue[5]) != len(vsaValue)-4 {
		t.Fatalf("not a Microsoft VSA: % x", vsaValue)
	}
	typ, salt, c := vsaValue[4], vsaValue[6:8], vsaValue[8:]
	if salt[0]&0x80 == 0 || len(c)%16 != 0 {
		t.Fatalf("salt % x, %d encrypted bytes", salt, len(c))
	}
	var plain []byte
	prev := append(append([]byte{}, reqAuth...), salt...)
	for i := 0; i < len(c); i += 16 {
		b := md5.Sum(append([]byte(testSecret), prev...))
		for j := range 16 {
			plain = append(plain, c[i+j]^b[j])
		}
		prev = c[i : i+16]
	}
	if int(plain[0]) > len(plain)-1 {
		t.Fatalf("key length %d in %d bytes", plain[0], len(plain))
	}
	return typ, plain[1 : 1+int(plain[0])]
}

func TestEAPAcceptCarriesKeysAndTheGatesAttributes(t *testing.T) {
	p := eapIdentity(t, 0)
	b := signed(t, p, testSecret)
	req, err := radius.Parse(b, []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	msk := make([]byte, 64)
	for i := range msk {
		msk[i] = byte(i)
	}
	d := appliance.Decision{Outcome: appliance.Accept, Reason: appliance.ReasonOK, User: "alice",
		Attributes: appliance.Attributes{VLAN: 20, SessionTimeout: 3600}}
	// An upstream's own MPPE keys (encrypted with its secret) must not
	// pass: clinicgate's are the ones. (The door may not name the
	// upstream package, hence the element filled in place.)
	d.Passthrough = slices.Grow(d.Passthrough, 1)[:1]
	d.Passthrough[0].Type, d.Passthrough[0].Value = 26, vsa(vendorMicrosoft, 16, bytes.Repeat([]byte{9}, 34))
	reply, err := encodeEAP(req, eap.Reply{Outcome: eap.Accept, EAP: []byte{3, 9, 0, 4}, MSK: msk, Decision: d, Decided: true})
	if err != nil {
		t.Fatal(err)
	}
	resp := mustReply(t, reply, b, radius.CodeAccessAccept)
	if m, _ := rfc2869.EAPMessage_Lookup(resp); !bytes.Equal(m, []byte{3, 9, 0, 4}) {
		t.Fatalf("got EAP % x, want the EAP-Success", m)
	}
	if got := rfc2865.UserName_GetString(resp); got != "alice" {
		t.Fatalf("got User-Name %q, want alice", got)
	}
	if got := all(resp, rfc2868.TunnelPrivateGroupID_Type); !slices.Equal(got, []string{"20"}) || rfc2865.SessionTimeout_Get(resp) != 3600 {
		t.Fatalf("got VLAN %q Session-Timeout %d, want 20 and 3600", got, rfc2865.SessionTimeout_Get(resp))
	}
	keys := map[byte][]byte{}
	for _, v := range all(resp, rfc2865.VendorSpecific_Type) {
		typ, key := mppeKey(t, []byte(v), req.Authenticator[:])
		if _, dup := keys[typ]; dup {
			t.Fatalf("vendor type %d twice", typ)
		}
		keys[typ] = key
	}
	// MS-MPPE-Recv-Key (17) = MSK[0:32], MS-MPPE-Send-Key (16) = MSK[32:64].
	if len(keys) != 2 || !bytes.Equal(keys[17], msk[:32]) || !bytes.Equal(keys[16], msk[32:]) {
		t.Fatalf("got MPPE keys %x, want Recv = MSK[0:32] and Send = MSK[32:64] and nothing else", keys)
	}

	// The gate's Reject wins over anything: no keys, EAP-Failure.
	d.Outcome = appliance.Reject
	reply, err = encodeEAP(req, eap.Reply{Outcome: eap.Accept, EAP: []byte{4, 9, 0, 4}, MSK: msk, Decision: d, Decided: true})
	if err != nil {
		t.Fatal(err)
	}
	resp = mustReply(t, reply, b, radius.CodeAccessReject)
	if len(all(resp, rfc2865.VendorSpecific_Type)) != 0 || rfc2865.UserName_GetString(resp) != "" {
		t.Fatal("a Reject carries keys or a User-Name")
	}
}

// An empty EAP-Message is an EAP-Start (RFC 3579): clinicgate asks
// for the identity.
func TestEAPStartAnsweredWithIdentityRequest(t *testing.T) {
	f := newFixture(t)
	f.withEAP(t)
	p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
	if err := rfc2865.UserName_SetString(p, "alice"); err != nil {
		t.Fatal(err)
	}
	p.Add(rfc2869.EAPMessage_Type, radius.Attribute{})
	b := signed(t, p, testSecret)
	resp := mustReply(t, f.auth(t, b), b, radius.CodeAccessChallenge)
	if m, _ := rfc2869.EAPMessage_Lookup(resp); !bytes.Equal(m, []byte{1, 1, 0, 5, 1}) {
		t.Fatalf("got EAP % x, want an EAP-Request/Identity", m)
	}
	if len(rfc2865.State_Get(resp)) != 16 {
		t.Fatal("no State")
	}
}

// TestEAPMethodsFollowTheClientPolicy: the door hands the client's EAP
// methods to the EAP server, which offers the first it is set up for and
// refuses a client whose methods it cannot offer.
func TestEAPMethodsFollowTheClientPolicy(t *testing.T) {
	for _, tc := range []struct {
		methods []string
		want    radius.Code
		eap     []byte
	}{
		{[]string{"peap", "ttls"}, radius.CodeAccessChallenge, []byte{1, 2, 0, 6, 25, 0x20}}, // PEAP Start, version 0
		{[]string{"tls", "ttls"}, radius.CodeAccessChallenge, []byte{1, 2, 0, 6, 21, 0x20}},  // no anchors: TTLS
		{[]string{"tls"}, radius.CodeAccessReject, []byte{4, 1, 0, 4}},
	} {
		f := newFixture(t)
		f.withEAP(t)
		f.clients.clients[0].Policy.EAPMethods = tc.methods
		b := signed(t, eapIdentity(t, 0), testSecret)
		resp := mustReply(t, f.auth(t, b), b, tc.want)
		if m, _ := rfc2869.EAPMessage_Lookup(resp); !bytes.Equal(m, tc.eap) {
			t.Fatalf("methods %v: got EAP % x, want % x", tc.methods, m, tc.eap)
		}
		if tc.want == radius.CodeAccessReject {
			if req := f.onlyCall(t); req.Invalid != appliance.ReasonMethodNotAllowed {
				t.Fatalf("methods %v: the gate got Invalid %q, want method_not_allowed", tc.methods, req.Invalid)
			}
		}
	}
}
