package radius

import (
	"bytes"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

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
