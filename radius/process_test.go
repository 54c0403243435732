package radius

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"

	"github.com/clinicgate/clinicgate/appliance"
)

// ---- who may ask

func TestUnknownNASDropped(t *testing.T) {
	stranger := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 1645}
	for _, tc := range []struct {
		name string
		k    kind
		b    func(t *testing.T) []byte
	}{
		{"Access-Request", kindAuth, func(t *testing.T) []byte { return signed(t, accessRequest(t, "alice", "correct horse"), testSecret) }},
		{"Accounting-Request", kindAcct, func(t *testing.T) []byte {
			return acctRequest(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start), testSecret)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if reply := f.s.process(t.Context(), tc.k, tc.b(t), stranger); reply != nil {
				t.Errorf("got a %d-byte reply to an unknown NAS, want none", len(reply))
			}
			if n := len(f.gate.calls()); n != 0 {
				t.Errorf("got %d calls to Decide, want 0", n)
			}
			if n := len(f.acct.recorded()); n != 0 {
				t.Errorf("got %d accounting records, want 0", n)
			}
			if got := f.dropped("unknown_client"); got != 1 {
				t.Errorf("got %v drops counted as unknown_client, want 1", got)
			}
		})
	}
}

func TestClientLookupErrorDropped(t *testing.T) {
	f := newFixture(t)
	f.clients.err = errors.New("database is locked")
	if reply := f.auth(t, signed(t, accessRequest(t, "alice", "correct horse"), testSecret)); reply != nil {
		t.Errorf("got a reply while clients could not be looked up, want none")
	}
	if n := len(f.gate.calls()); n != 0 {
		t.Errorf("got %d calls to Decide, want 0", n)
	}
	if got := f.dropped("store_error"); got != 1 {
		t.Errorf("got %v drops counted as store_error, want 1", got)
	}
}

// ---- Message-Authenticator (RFC 3579 §3.2, BlastRADIUS)

// expectDropped fails unless b is dropped without asking the gate and the
// drop is counted under cause.
func expectDropped(t *testing.T, f *fixture, b []byte, cause string) {
	t.Helper()
	if reply := f.auth(t, b); reply != nil {
		t.Errorf("got a %d-byte reply, want the request dropped", len(reply))
	}
	if n := len(f.gate.calls()); n != 0 {
		t.Errorf("got %d calls to Decide, want 0", n)
	}
	if got := f.dropped(cause); got != 1 {
		t.Errorf("got %v drops counted as %s, want 1", got, cause)
	}
}

func TestMissingMessageAuthenticatorDropped(t *testing.T) {
	f := newFixture(t)
	expectDropped(t, f, encode(t, accessRequest(t, "alice", "correct horse")), "message_authenticator_missing")
}

func TestWrongMessageAuthenticatorDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    func(t *testing.T) []byte
	}{
		{"wrong shared secret", func(t *testing.T) []byte {
			return signed(t, accessRequest(t, "alice", "correct horse"), "not-the-shared-secret")
		}},
		{"user name altered after signing", func(t *testing.T) []byte {
			b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
			i := bytes.Index(b, []byte("alice"))
			b[i] = 'm' // "mlice"
			return b
		}},
		{"authenticator altered after signing", func(t *testing.T) []byte {
			b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
			b[4] ^= 0x80
			return b
		}},
		{"all zero", func(t *testing.T) []byte {
			b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
			clear(b[len(b)-16:])
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectDropped(t, newFixture(t), tc.b(t), "message_authenticator")
		})
	}
}

func TestDuplicateMessageAuthenticatorDropped(t *testing.T) {
	// Both carry HMAC-MD5 of the packet with both zeroed: a checker that
	// zeroes every copy, or looks only at one, would take it.
	b := withMA(withMA(encode(t, accessRequest(t, "alice", "correct horse")), testSecret, 16), testSecret, 16)
	if got := bytes.Count(b, []byte{typeMA, 18}); got < 2 {
		t.Fatalf("test packet has %d Message-Authenticators, want 2", got)
	}
	expectDropped(t, newFixture(t), b, "message_authenticator")
}

func TestMessageAuthenticatorWrongLengthDropped(t *testing.T) {
	for _, n := range []int{0, 8, 15, 17, 32} {
		t.Run(strconv.Itoa(n)+" bytes", func(t *testing.T) {
			b := withMA(encode(t, accessRequest(t, "alice", "correct horse")), testSecret, n)
			expectDropped(t, newFixture(t), b, "message_authenticator")
		})
	}
}

func TestMissingMessageAuthenticatorAllowedWhenRelaxed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sign     bool
		wantNote bool
	}{
		{"absent", false, true},
		{"present and valid", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.relax()
			b := encode(t, accessRequest(t, "alice", "correct horse"))
			if tc.sign {
				b = withMA(b, testSecret, 16)
			}
			// Still signed: every response carries a Message-Authenticator.
			mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			req := f.onlyCall(t)
			if got := slices.Contains(req.Notes, "message_authenticator_absent"); got != tc.wantNote {
				t.Errorf("got notes %q; want message_authenticator_absent among them: %v", req.Notes, tc.wantNote)
			}
			if req.Invalid != "" {
				t.Errorf("got Invalid %q, want none", req.Invalid)
			}
		})
	}
}

func TestRelaxedClientStillChecksPresentMessageAuthenticator(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    func(t *testing.T) []byte
	}{
		{"wrong shared secret", func(t *testing.T) []byte {
			return signed(t, accessRequest(t, "alice", "correct horse"), "not-the-shared-secret")
		}},
		{"two", func(t *testing.T) []byte {
			return withMA(withMA(encode(t, accessRequest(t, "alice", "correct horse")), testSecret, 16), testSecret, 16)
		}},
		{"wrong length", func(t *testing.T) []byte {
			return withMA(encode(t, accessRequest(t, "alice", "correct horse")), testSecret, 8)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.relax()
			expectDropped(t, f, tc.b(t), "message_authenticator")
		})
	}
}

// ---- malformed packets

func TestMalformedPacketDropped(t *testing.T) {
	user := attr(byte(rfc2865.UserName_Type), []byte("alice"))
	for _, tc := range []struct {
		name  string
		b     func(t *testing.T) []byte
		cause string
	}{
		{"empty", func(t *testing.T) []byte { return nil }, "truncated"},
		{"19 bytes", func(t *testing.T) []byte {
			return signed(t, accessRequest(t, "alice", "correct horse"), testSecret)[:19]
		}, "truncated"},
		{"Length beyond the datagram", func(t *testing.T) []byte {
			b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
			return b[:len(b)-5]
		}, "malformed"},
		{"Length below 20", func(t *testing.T) []byte {
			b := rawPacket(radius.CodeAccessRequest, 1, user)
			binary.BigEndian.PutUint16(b[2:4], 19)
			return b
		}, "malformed"},
		{"Length above 4096", func(t *testing.T) []byte {
			b := append(rawPacket(radius.CodeAccessRequest, 1, user), make([]byte, 5000)...)
			binary.BigEndian.PutUint16(b[2:4], 5000)
			return b
		}, "malformed"},
		{"attribute length 0", func(t *testing.T) []byte {
			return rawPacket(radius.CodeAccessRequest, 1, user, []byte{byte(rfc2865.NASIdentifier_Type), 0, 'a', 'p'})
		}, "malformed"},
		{"attribute length 1", func(t *testing.T) []byte {
			return rawPacket(radius.CodeAccessRequest, 1, user, []byte{byte(rfc2865.NASIdentifier_Type), 1, 'a', 'p'})
		}, "malformed"},
		{"attribute running past the end", func(t *testing.T) []byte {
			return rawPacket(radius.CodeAccessRequest, 1, user, []byte{byte(rfc2865.NASIdentifier_Type), 40, 'a', 'p'})
		}, "malformed"},
		{"attribute running past Length into padding", func(t *testing.T) []byte {
			b := rawPacket(radius.CodeAccessRequest, 1, user, []byte{byte(rfc2865.NASIdentifier_Type), 6, 'a', 'p'})
			binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
			return append(b, 'x', 'y')
		}, "malformed"},
		{"lone byte after the attributes", func(t *testing.T) []byte {
			return rawPacket(radius.CodeAccessRequest, 1, user, []byte{byte(rfc2865.NASIdentifier_Type)})
		}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectDropped(t, newFixture(t), tc.b(t), tc.cause)
		})
	}
}

func TestPaddingPastLengthIgnored(t *testing.T) {
	for _, tc := range []struct {
		name    string
		padding []byte
	}{
		{"zeros", make([]byte, 10)},
		{"junk", []byte("\xff\x00\x01junk")},
		// A second Message-Authenticator past Length is not part of the
		// packet and must not count.
		{"what looks like a second Message-Authenticator", append([]byte{typeMA, 18}, make([]byte, 16)...)},
		{"up to 4096 bytes", make([]byte, radius.MaxPacketLength-100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
			datagram := append(slices.Clone(b), tc.padding...)
			mustReply(t, f.auth(t, datagram), b, radius.CodeAccessReject)
			req := f.onlyCall(t)
			if req.User != "alice" || string(req.Password) != "correct horse" || req.Invalid != "" {
				t.Errorf("got user %q, password %q, invalid %q; want alice, correct horse, none", req.User, string(req.Password), req.Invalid)
			}
		})
	}
}

// ---- translating requests

func TestMalformedAccessRequestIsBadRequest(t *testing.T) {
	name := func(p *radius.Packet, s string) { p.Add(rfc2865.UserName_Type, radius.Attribute(s)) }
	random := func(n int) radius.Attribute {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	for _, tc := range []struct {
		name  string
		build func(t *testing.T) *radius.Packet
	}{
		{"User-Password of 144 bytes", func(t *testing.T) *radius.Packet {
			p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
			name(p, "alice")
			p.Add(rfc2865.UserPassword_Type, random(144))
			return p
		}},
		{"User-Password of 20 bytes", func(t *testing.T) *radius.Packet {
			p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
			name(p, "alice")
			p.Add(rfc2865.UserPassword_Type, random(20))
			return p
		}},
		{"empty User-Password", func(t *testing.T) *radius.Packet {
			p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
			name(p, "alice")
			p.Add(rfc2865.UserPassword_Type, radius.Attribute{})
			return p
		}},
		{"two User-Passwords", func(t *testing.T) *radius.Packet {
			p := accessRequest(t, "alice", "correct horse")
			p.Add(rfc2865.UserPassword_Type, hidePassword([]byte("other"), []byte(testSecret), p.Authenticator[:]))
			return p
		}},
		{"two User-Names", func(t *testing.T) *radius.Packet {
			p := accessRequest(t, "alice", "correct horse")
			name(p, "mallory")
			return p
		}},
		{"no User-Name", func(t *testing.T) *radius.Packet {
			p := accessRequest(t, "alice", "correct horse")
			p.Del(rfc2865.UserName_Type)
			return p
		}},
		{"two States", func(t *testing.T) *radius.Packet {
			p := accessRequest(t, "alice", "123456")
			p.Add(rfc2865.State_Type, radius.Attribute("state-1"))
			p.Add(rfc2865.State_Type, radius.Attribute("state-2"))
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			b := signed(t, tc.build(t), testSecret)
			mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			if got := f.onlyCall(t).Invalid; got != appliance.ReasonBadRequest {
				t.Errorf("got Invalid %q, want %q", got, appliance.ReasonBadRequest)
			}
		})
	}
}

// vsa encodes a Vendor-Specific value (RFC 2865 §5.26) with one
// sub-attribute.
func vsa(vendor uint32, typ byte, value []byte) radius.Attribute {
	b := binary.BigEndian.AppendUint32(nil, vendor)
	return append(b, attr(typ, value)...)
}

func TestAuthMethodDetected(t *testing.T) {
	nameOnly := func(t *testing.T) *radius.Packet {
		p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
		rfc2865.UserName_SetString(p, "alice")
		return p
	}
	for _, tc := range []struct {
		name  string
		build func(t *testing.T) *radius.Packet
		want  appliance.Method
	}{
		{"PAP", func(t *testing.T) *radius.Packet { return accessRequest(t, "alice", "correct horse") }, appliance.MethodPAP},
		{"CHAP", func(t *testing.T) *radius.Packet {
			p := nameOnly(t)
			p.Add(rfc2865.CHAPPassword_Type, append([]byte{7}, bytes.Repeat([]byte{0xab}, 16)...))
			p.Add(rfc2865.CHAPChallenge_Type, bytes.Repeat([]byte{0xcd}, 16))
			return p
		}, appliance.MethodCHAP},
		{"MS-CHAPv2", func(t *testing.T) *radius.Packet {
			p := nameOnly(t)
			p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, 11, bytes.Repeat([]byte{1}, 16)))
			p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, 25, bytes.Repeat([]byte{2}, 50)))
			return p
		}, appliance.MethodMSCHAPv2},
		{"MS-CHAPv1", func(t *testing.T) *radius.Packet {
			p := nameOnly(t)
			p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, 11, bytes.Repeat([]byte{1}, 8)))
			p.Add(rfc2865.VendorSpecific_Type, vsa(vendorMicrosoft, 1, bytes.Repeat([]byte{2}, 50)))
			return p
		}, appliance.MethodMSCHAP},
		{"EAP", func(t *testing.T) *radius.Packet {
			p := nameOnly(t)
			// EAP-Response/Identity "alice" (RFC 3748 §5.1).
			p.Add(rfc2869.EAPMessage_Type, radius.Attribute("\x02\x01\x00\x0a\x01alice"))
			return p
		}, appliance.MethodEAP},
		{"PAP with another vendor's attribute", func(t *testing.T) *radius.Packet {
			p := accessRequest(t, "alice", "correct horse")
			p.Add(rfc2865.VendorSpecific_Type, vsa(9, 1, []byte("cisco-avpair=x")))
			return p
		}, appliance.MethodPAP},
		{"no credentials", nameOnly, appliance.MethodNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			b := signed(t, tc.build(t), testSecret)
			mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			req := f.onlyCall(t)
			if req.Method != tc.want {
				t.Errorf("got method %q, want %q", req.Method, tc.want)
			}
			if req.Invalid != "" {
				t.Errorf("got Invalid %q, want none", req.Invalid)
			}
			if tc.want != appliance.MethodPAP && len(req.Password) != 0 {
				t.Errorf("got a password with method %q, want none", req.Method)
			}
		})
	}
}

func TestPAPPasswordDecoded(t *testing.T) {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&()*+,-./:;<=>?@[]^_{|}~ "
	for _, n := range []int{1, 8, 15, 16, 17, 31, 32, 33, 120, 127, 128} {
		t.Run(strconv.Itoa(n)+" bytes", func(t *testing.T) {
			pw := make([]byte, n)
			for i := range pw {
				pw[i] = chars[(i*7+n)%len(chars)]
			}
			f := newFixture(t)
			b := signed(t, accessRequest(t, "alice", string(pw)), testSecret)
			if got, want := len(b), 20+2+5+2+(n+15)/16*16+18; got != want {
				t.Fatalf("test packet is %d bytes, want %d", got, want)
			}
			mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			req := f.onlyCall(t)
			if !bytes.Equal(req.Password, pw) {
				t.Errorf("got password %q, want %q", string(req.Password), pw)
			}
			if req.Method != appliance.MethodPAP || req.Invalid != "" {
				t.Errorf("got method %q, invalid %q; want pap, none", req.Method, req.Invalid)
			}
		})
	}
}

func TestRequestFieldsPassed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nas     func(p *radius.Packet)
		wantNAS string
	}{
		{"NAS-Identifier", func(p *radius.Packet) {
			rfc2865.NASIdentifier_SetString(p, "ap-lobby")
			rfc2865.NASIPAddress_Set(p, net.IPv4(192, 0, 2, 1))
		}, "ap-lobby"},
		{"NAS-IP-Address", func(p *radius.Packet) { rfc2865.NASIPAddress_Set(p, net.IPv4(192, 0, 2, 1)) }, "192.0.2.1"},
		{"neither", func(p *radius.Packet) {}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			p := accessRequest(t, "alice", "123456")
			rfc2865.State_Set(p, []byte("opaque\x00state"))
			rfc2865.CallingStationID_SetString(p, "AA-BB-CC-DD-EE-FF")
			tc.nas(p)
			b := signed(t, p, testSecret)
			mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
			req := f.onlyCall(t)
			for _, c := range []struct{ what, got, want string }{
				{"door", string(req.Door), string(appliance.DoorRADIUS)},
				{"client", req.Client.Name, "office-wifi"},
				{"source", req.Source.String(), "192.0.2.10"},
				{"user", req.User, "alice"},
				{"password", string(req.Password), "123456"},
				{"state", string(req.State), "opaque\x00state"},
				{"device", req.Device, "AA-BB-CC-DD-EE-FF"},
				{"NAS", req.NAS, tc.wantNAS},
				{"invalid", string(req.Invalid), ""},
			} {
				if c.got != c.want {
					t.Errorf("got %s %q, want %q", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestIPv4MappedSourceFindsClient(t *testing.T) {
	f := newFixture(t)
	b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
	from := &net.UDPAddr{IP: net.ParseIP("::ffff:192.0.2.10"), Port: 40000}
	mustReply(t, f.s.process(t.Context(), kindAuth, b, from), b, radius.CodeAccessReject)
	if got, want := f.onlyCall(t).Source, netip.MustParseAddr("192.0.2.10"); got != want {
		t.Errorf("got source %v, want %v", got, want)
	}
}

// ---- encoding decisions

func TestProxyStateCopiedInOrder(t *testing.T) {
	for _, tc := range []struct {
		decision appliance.Decision
		want     radius.Code
	}{
		{appliance.Decision{Outcome: appliance.Accept, Attributes: appliance.Attributes{VLAN: 20}}, radius.CodeAccessAccept},
		{appliance.Decision{Outcome: appliance.Reject, Message: appliance.MsgDenied}, radius.CodeAccessReject},
		{appliance.Decision{Outcome: appliance.Challenge, State: []byte("s1"), Message: appliance.MsgEnterCode}, radius.CodeAccessChallenge},
	} {
		t.Run(string(tc.decision.Outcome), func(t *testing.T) {
			f := newFixture(t)
			f.gate.decision = tc.decision
			p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
			p.Add(rfc2865.ProxyState_Type, radius.Attribute("first"))
			rfc2865.UserName_SetString(p, "alice")
			p.Add(rfc2865.ProxyState_Type, radius.Attribute("second"))
			p.Add(rfc2865.UserPassword_Type, hidePassword([]byte("correct horse"), []byte(testSecret), p.Authenticator[:]))
			p.Add(rfc2865.ProxyState_Type, radius.Attribute("third\x00\xff"))
			b := signed(t, p, testSecret)
			reply := mustReply(t, f.auth(t, b), b, tc.want)
			if got, want := all(reply, rfc2865.ProxyState_Type), []string{"first", "second", "third\x00\xff"}; !slices.Equal(got, want) {
				t.Errorf("got Proxy-State %q, want %q", got, want)
			}
		})
	}
}

func TestAcceptCarriesVLANAttributes(t *testing.T) {
	f := newFixture(t)
	f.gate.decision = appliance.Decision{
		Outcome: appliance.Accept, Reason: appliance.ReasonOK, User: "alice",
		Attributes: appliance.Attributes{VLAN: 20, SessionTimeout: 3600, Class: "staff"},
	}
	b := signed(t, accessRequest(t, "alice", "correct horse,123456"), testSecret)
	reply := mustReply(t, f.auth(t, b), b, radius.CodeAccessAccept)
	for _, c := range []struct {
		what string
		typ  radius.Type
		want []string
	}{
		// RFC 3580 §3.31 and RFC 2868: tag 0, VLAN (13), IEEE-802 (6).
		{"Tunnel-Type", rfc2868.TunnelType_Type, []string{"\x00\x00\x00\x0d"}},
		{"Tunnel-Medium-Type", rfc2868.TunnelMediumType_Type, []string{"\x00\x00\x00\x06"}},
		{"Tunnel-Private-Group-Id", rfc2868.TunnelPrivateGroupID_Type, []string{"20"}},
		{"Session-Timeout", rfc2865.SessionTimeout_Type, []string{"\x00\x00\x0e\x10"}},
		{"Class", rfc2865.Class_Type, []string{"staff"}},
		{"Reply-Message", rfc2865.ReplyMessage_Type, nil},
		{"State", rfc2865.State_Type, nil},
	} {
		if got := all(reply, c.typ); !slices.Equal(got, c.want) {
			t.Errorf("got %s %q, want %q", c.what, got, c.want)
		}
	}
}

func TestOnlyAcceptGrantsAttributes(t *testing.T) {
	granted := appliance.Attributes{VLAN: 20, SessionTimeout: 3600, Class: "staff"}
	for _, tc := range []struct {
		decision appliance.Decision
		want     radius.Code
	}{
		{appliance.Decision{Outcome: appliance.Reject, Message: appliance.MsgDenied, Attributes: granted}, radius.CodeAccessReject},
		{appliance.Decision{Outcome: appliance.Challenge, State: []byte("s1"), Message: appliance.MsgEnterCode, Attributes: granted}, radius.CodeAccessChallenge},
		{appliance.Decision{Outcome: "something new", Attributes: granted}, radius.CodeAccessReject},
	} {
		t.Run(string(tc.decision.Outcome), func(t *testing.T) {
			f := newFixture(t)
			f.gate.decision = tc.decision
			b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
			reply := mustReply(t, f.auth(t, b), b, tc.want)
			for _, typ := range []radius.Type{rfc2868.TunnelType_Type, rfc2868.TunnelMediumType_Type, rfc2868.TunnelPrivateGroupID_Type, rfc2865.SessionTimeout_Type, rfc2865.Class_Type} {
				if got := all(reply, typ); got != nil {
					t.Errorf("got attribute %d = %q in a %v, want none", typ, got, tc.want)
				}
			}
		})
	}
}

func TestChallengeCarriesStateAndReplyMessage(t *testing.T) {
	f := newFixture(t)
	f.gate.decision = appliance.Decision{
		Outcome: appliance.Challenge, Reason: appliance.ReasonMFAChallenge,
		State: []byte("opaque-state-\x01\x02"), Message: appliance.MsgEnterCode,
	}
	b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
	reply := mustReply(t, f.auth(t, b), b, radius.CodeAccessChallenge)
	if got, want := all(reply, rfc2865.State_Type), []string{"opaque-state-\x01\x02"}; !slices.Equal(got, want) {
		t.Errorf("got State %q, want %q", got, want)
	}
	if got, want := all(reply, rfc2865.ReplyMessage_Type), []string{appliance.MsgEnterCode}; !slices.Equal(got, want) {
		t.Errorf("got Reply-Message %q, want %q", got, want)
	}
}

func TestDecideErrorFailsClosed(t *testing.T) {
	f := newFixture(t)
	// A broken gate that returns an Accept with its error must still end
	// in a Reject, without the Accept's attributes or a challenge State.
	f.gate.decision = appliance.Decision{
		Outcome: appliance.Accept, Message: "welcome", State: []byte("s1"),
		Attributes: appliance.Attributes{VLAN: 20, SessionTimeout: 60, Class: "staff"},
	}
	f.gate.err = errors.New("store: disk I/O error")
	b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
	reply := mustReply(t, f.auth(t, b), b, radius.CodeAccessReject)
	if got, want := all(reply, rfc2865.ReplyMessage_Type), []string{appliance.MsgDenied}; !slices.Equal(got, want) {
		t.Errorf("got Reply-Message %q, want %q", got, want)
	}
	for _, a := range reply.Attributes {
		if a.Type != typeMA && a.Type != rfc2865.ReplyMessage_Type {
			t.Errorf("got attribute %d = %q in the fail-closed Reject, want only Message-Authenticator and Reply-Message", a.Type, a.Attribute)
		}
	}
}

// ---- retransmissions (RFC 5080 §2.2.2)

func TestDuplicateRequestAnsweredFromCache(t *testing.T) {
	f := newFixture(t)
	b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
	first := f.auth(t, b)
	mustReply(t, first, b, radius.CodeAccessReject)
	// Were it decided again, this would now be an Accept.
	f.gate.decision = appliance.Decision{Outcome: appliance.Accept}
	second := f.auth(t, b)
	if !bytes.Equal(second, first) {
		t.Errorf("got a retransmit answered with\n% x\nwant the first reply\n% x", second, first)
	}
	if n := len(f.gate.calls()); n != 1 {
		t.Errorf("got %d calls to Decide, want 1", n)
	}
	if got := counterValue(f.metrics.Duplicates.WithLabelValues(door)); got != 1 {
		t.Errorf("got %v duplicates counted, want 1", got)
	}
	if got := f.dropped("duplicate_in_progress"); got != 0 {
		t.Errorf("got %v retransmits counted as dropped, want 0 (this one was answered)", got)
	}

	t.Run("same identifier and authenticator from another port is a new request", func(t *testing.T) {
		other := &net.UDPAddr{IP: nasAddr.IP, Port: nasAddr.Port + 1}
		mustReply(t, f.s.process(t.Context(), kindAuth, b, other), b, radius.CodeAccessAccept)
		if n := len(f.gate.calls()); n != 2 {
			t.Errorf("got %d calls to Decide, want 2", n)
		}
	})
	t.Run("a new authenticator is a new request", func(t *testing.T) {
		p := accessRequest(t, "alice", "correct horse")
		p.Identifier = b[1]
		b2 := signed(t, p, testSecret)
		mustReply(t, f.auth(t, b2), b2, radius.CodeAccessAccept)
		if n := len(f.gate.calls()); n != 3 {
			t.Errorf("got %d calls to Decide, want 3", n)
		}
	})
}

func TestRetransmitWhileDecidingDropped(t *testing.T) {
	f := newFixture(t)
	f.gate.entered = make(chan struct{}, 1)
	f.gate.release = make(chan struct{})
	b := signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
	done := make(chan []byte)
	go func() { done <- f.s.process(t.Context(), kindAuth, b, nasAddr) }()
	<-f.gate.entered
	if reply := f.auth(t, b); reply != nil {
		t.Errorf("got a reply to a retransmit of a request being decided, want none")
	}
	close(f.gate.release)
	mustReply(t, <-done, b, radius.CodeAccessReject)
	if n := len(f.gate.calls()); n != 1 {
		t.Errorf("got %d calls to Decide, want 1", n)
	}
	if got := f.dropped("duplicate_in_progress"); got != 1 {
		t.Errorf("got %v drops counted as duplicate_in_progress, want 1", got)
	}
}

func TestDedupEvictsOldestFirst(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := newDedup(3, 30*time.Second)
	// "k" answered, expired, then seen and answered again: its new entry
	// is younger than "a" and "b" and must outlive them.
	d.begin("k", t0)
	d.finish("k", []byte("old"), t0)
	t1 := t0.Add(time.Minute)
	d.begin("k", t1)
	d.finish("k", []byte("new"), t1)
	d.begin("a", t1)
	d.begin("b", t1)
	if reply, _ := d.begin("k", t1); string(reply) != "new" {
		t.Errorf("got cached reply %q for the newest entry, want %q", reply, "new")
	}
}

func TestDedupForgetsFailedRequest(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := newDedup(2, 30*time.Second)
	d.begin("k", t0)
	d.finish("k", nil, t0) // not answered: the retransmit is decided afresh
	if reply, inProgress := d.begin("k", t0); reply != nil || inProgress {
		t.Fatalf("got reply %q, in progress %v for a forgotten request; want neither", reply, inProgress)
	}
	d.finish("k", []byte("answer"), t0)
	d.begin("a", t0)
	if reply, _ := d.begin("k", t0); string(reply) != "answer" {
		t.Errorf("got cached reply %q, want %q", reply, "answer")
	}
}

func TestDedupStaysBounded(t *testing.T) {
	const max = 4
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := newDedup(max, 30*time.Second)
	// Keys seen again after expiry, forgotten and seen again, or new.
	for i := range 200 {
		now := t0.Add(time.Duration(i) * 20 * time.Second)
		key := strconv.Itoa(i % 7)
		if reply, inProgress := d.begin(key, now); reply == nil && !inProgress {
			if i%3 == 0 {
				d.finish(key, nil, now)
			} else {
				d.finish(key, []byte(key), now)
			}
		}
		if n := len(d.items); n > max {
			t.Fatalf("after %d requests: got %d entries, want at most %d", i+1, n, max)
		}
	}
}

// ---- Status-Server (RFC 5997)

func TestStatusServer(t *testing.T) {
	status := func(t *testing.T) []byte {
		p := radius.New(radius.CodeStatusServer, []byte(testSecret))
		rfc2865.NASIdentifier_SetString(p, "monitor")
		return encode(t, p)
	}
	for _, tc := range []struct {
		name    string
		relaxed bool
		b       func(t *testing.T) []byte
		answer  bool
	}{
		{"with a valid Message-Authenticator", false, func(t *testing.T) []byte { return withMA(status(t), testSecret, 16) }, true},
		{"without a Message-Authenticator", false, status, false},
		{"with a wrong Message-Authenticator", false, func(t *testing.T) []byte { return withMA(status(t), "not-the-shared-secret", 16) }, false},
		{"without, from a relaxed client", true, status, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.relaxed {
				f.relax()
			}
			b := tc.b(t)
			reply := f.auth(t, b)
			switch {
			case tc.answer:
				mustReply(t, reply, b, radius.CodeAccessAccept)
			case reply != nil:
				t.Errorf("got a reply, want the Status-Server dropped")
			}
			if n := len(f.gate.calls()); n != 0 {
				t.Errorf("got %d calls to Decide, want 0", n)
			}
		})
	}
}

func TestWrongPortDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		k    kind
		b    func(t *testing.T) []byte
	}{
		{"Access-Request on the accounting port", kindAcct, func(t *testing.T) []byte {
			return signed(t, accessRequest(t, "alice", "correct horse"), testSecret)
		}},
		{"Status-Server on the accounting port", kindAcct, func(t *testing.T) []byte {
			return withMA(encode(t, radius.New(radius.CodeStatusServer, []byte(testSecret))), testSecret, 16)
		}},
		{"Accounting-Request on the authentication port", kindAuth, func(t *testing.T) []byte {
			return acctRequest(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start), testSecret)
		}},
		{"Access-Accept on the authentication port", kindAuth, func(t *testing.T) []byte {
			return withMA(encode(t, radius.New(radius.CodeAccessAccept, []byte(testSecret))), testSecret, 16)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if reply := f.s.process(t.Context(), tc.k, tc.b(t), nasAddr); reply != nil {
				t.Errorf("got a reply, want the packet dropped")
			}
			if n := len(f.gate.calls()); n != 0 {
				t.Errorf("got %d calls to Decide, want 0", n)
			}
			if n := len(f.acct.recorded()); n != 0 {
				t.Errorf("got %d accounting records, want 0", n)
			}
			if got := f.dropped("unexpected_code"); got != 1 {
				t.Errorf("got %v drops counted as unexpected_code, want 1", got)
			}
		})
	}
}

// ---- accounting (RFC 2866)

// acctPacket returns an Accounting-Request for session "sess-1" of alice.
func acctPacket(t testing.TB, status rfc2866.AcctStatusType) *radius.Packet {
	t.Helper()
	p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
	rfc2866.AcctStatusType_Set(p, status)
	rfc2866.AcctSessionID_SetString(p, "sess-1")
	rfc2865.UserName_SetString(p, "alice")
	rfc2865.CallingStationID_SetString(p, "AA-BB-CC-DD-EE-FF")
	return p
}

func (f *fixture) account(t *testing.T, b []byte) []byte {
	t.Helper()
	return f.s.process(t.Context(), kindAcct, b, nasAddr)
}

func TestAccountingBadAuthenticatorDropped(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    func(t *testing.T) []byte
	}{
		{"wrong shared secret", func(t *testing.T) []byte {
			return acctRequest(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start), "not-the-shared-secret")
		}},
		{"altered after signing", func(t *testing.T) []byte {
			b := acctRequest(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start), testSecret)
			b[bytes.Index(b, []byte("sess-1"))+5] = '2'
			return b
		}},
		{"random authenticator, as in an Access-Request", func(t *testing.T) []byte {
			return encode(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if reply := f.account(t, tc.b(t)); reply != nil {
				t.Errorf("got a reply, want the request dropped")
			}
			if n := len(f.acct.recorded()); n != 0 {
				t.Errorf("got %d accounting records, want 0", n)
			}
			if got := f.dropped("bad_authenticator"); got != 1 {
				t.Errorf("got %v drops counted as bad_authenticator, want 1", got)
			}
		})
	}
}

func TestAccountingStartStopRecorded(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	f.s.Now = func() time.Time { return now }

	start := acctPacket(t, rfc2866.AcctStatusType_Value_Start)
	rfc2865.NASIPAddress_Set(start, net.IPv4(192, 0, 2, 1))
	rfc2865.NASIdentifier_SetString(start, "ap-lobby")
	rfc2865.FramedIPAddress_Set(start, net.IPv4(10, 0, 0, 5))
	start.Add(rfc2865.ProxyState_Type, radius.Attribute("ps-1"))
	start.Add(rfc2865.ProxyState_Type, radius.Attribute("ps-2"))
	b := acctRequest(t, start, testSecret)
	reply := f.account(t, b)
	if reply == nil {
		t.Fatal("got no Accounting-Response to a Start")
	}
	resp := checkResponseAuth(t, reply, b, testSecret)
	if resp == nil {
		t.FailNow()
	}
	if resp.Code != radius.CodeAccountingResponse {
		t.Errorf("got %v, want Accounting-Response", resp.Code)
	}
	if got, want := all(resp, rfc2865.ProxyState_Type), []string{"ps-1", "ps-2"}; !slices.Equal(got, want) {
		t.Errorf("got Proxy-State %q, want %q", got, want)
	}

	stop := acctPacket(t, rfc2866.AcctStatusType_Value_Stop)
	rfc2866.AcctSessionTime_Set(stop, 600)
	rfc2866.AcctInputOctets_Set(stop, 1000)
	rfc2869.AcctInputGigawords_Set(stop, 1)
	rfc2866.AcctOutputOctets_Set(stop, 2000)
	rfc2866.AcctTerminateCause_Set(stop, rfc2866.AcctTerminateCause_Value_UserRequest)
	b = acctRequest(t, stop, testSecret)
	reply = f.account(t, b)
	if reply == nil {
		t.Fatal("got no Accounting-Response to a Stop")
	}
	if resp := checkResponseAuth(t, reply, b, testSecret); resp != nil && resp.Code != radius.CodeAccountingResponse {
		t.Errorf("got %v, want Accounting-Response", resp.Code)
	}

	got := f.acct.recorded()
	want := []appliance.AcctSession{
		{
			Client: "office-wifi", SessionID: "sess-1", UserName: "alice", CallingStation: "AA-BB-CC-DD-EE-FF",
			NASAddress: "192.0.2.1", FramedAddress: "10.0.0.5", Status: appliance.AcctActive, StartedAt: now, UpdatedAt: now,
			NASIdentifier: "ap-lobby", NASIPAttr: "192.0.2.1",
		},
		{
			Client: "office-wifi", SessionID: "sess-1", UserName: "alice", CallingStation: "AA-BB-CC-DD-EE-FF",
			NASAddress: "192.0.2.10", Status: appliance.AcctStopped, StartedAt: now, UpdatedAt: now, StoppedAt: now,
			SessionTime: 600, InputOctets: 1<<32 + 1000, OutputOctets: 2000, TerminateCause: "User-Request",
		},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got records\n%+v\nwant\n%+v", got, want)
	}
	for _, status := range []string{"Start", "Stop"} {
		if got := counterValue(f.metrics.Accounting.WithLabelValues(status)); got != 1 {
			t.Errorf("got %v %s records counted, want 1", got, status)
		}
	}
}

func TestAccountingOnStopsAllSessions(t *testing.T) {
	f := newFixture(t)
	p := radius.New(radius.CodeAccountingRequest, []byte(testSecret))
	rfc2866.AcctStatusType_Set(p, rfc2866.AcctStatusType_Value_AccountingOn)
	b := acctRequest(t, p, testSecret)
	if reply := f.account(t, b); reply == nil {
		t.Fatal("got no Accounting-Response to an Accounting-On")
	} else {
		checkResponseAuth(t, reply, b, testSecret)
	}
	if got, want := f.acct.stopAll, []string{"office-wifi/NAS-Reboot"}; !slices.Equal(got, want) {
		t.Errorf("got sessions stopped for %q, want %q", got, want)
	}
}

func TestAccountingWithoutSessionIDDropped(t *testing.T) {
	f := newFixture(t)
	p := acctPacket(t, rfc2866.AcctStatusType_Value_Start)
	p.Del(rfc2866.AcctSessionID_Type)
	if reply := f.account(t, acctRequest(t, p, testSecret)); reply != nil {
		t.Errorf("got a reply to an Accounting-Request without Acct-Session-Id, want none")
	}
	if n := len(f.acct.recorded()); n != 0 {
		t.Errorf("got %d accounting records, want 0", n)
	}
}

func TestAccountingNotAcknowledgedWhenSinkFails(t *testing.T) {
	f := newFixture(t)
	f.acct.err = errors.New("disk full")
	b := acctRequest(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start), testSecret)
	if reply := f.account(t, b); reply != nil {
		t.Fatalf("got an Accounting-Response for a record that was not stored, want none (the NAS must retry)")
	}
	// The NAS retransmits the same packet; now it is stored and answered,
	// not dropped as a duplicate.
	f.acct.err = nil
	reply := f.account(t, b)
	if reply == nil {
		t.Fatal("got no reply to the retransmit after the store recovered")
	}
	checkResponseAuth(t, reply, b, testSecret)
	if n := len(f.acct.recorded()); n != 1 {
		t.Errorf("got %d accounting records, want 1", n)
	}
}

func TestAccountingRetransmitRecordedOnce(t *testing.T) {
	f := newFixture(t)
	b := acctRequest(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start), testSecret)
	first, second := f.account(t, b), f.account(t, b)
	if first == nil || !bytes.Equal(first, second) {
		t.Errorf("got replies\n% x\n% x\nwant two identical ones", first, second)
	}
	if n := len(f.acct.recorded()); n != 1 {
		t.Errorf("got %d accounting records, want 1", n)
	}
	if got := counterValue(f.metrics.Duplicates.WithLabelValues(door)); got != 1 {
		t.Errorf("got %v duplicates counted, want 1", got)
	}
}

func TestAccountingStatusCannotMintMetricLabels(t *testing.T) {
	f := newFixture(t)
	p := acctPacket(t, rfc2866.AcctStatusType(0x7f00_0001))
	b := acctRequest(t, p, testSecret)
	if reply := f.account(t, b); reply == nil {
		t.Fatal("got no Accounting-Response to an unknown Acct-Status-Type, want it acknowledged")
	} else {
		checkResponseAuth(t, reply, b, testSecret)
	}
	if n := len(f.acct.recorded()); n != 0 {
		t.Errorf("got %d accounting records for an unknown status type, want 0", n)
	}
	if got := counterValue(f.metrics.Accounting.WithLabelValues("other")); got != 1 {
		t.Errorf("got %v records counted as other, want 1", got)
	}
	if n := testCollectorCount(f.metrics.Accounting); n != 1 {
		t.Errorf("got %d accounting label sets, want 1", n)
	}
}

func TestAccountingOffDropped(t *testing.T) {
	f := newFixture(t)
	f.s.Accounting = nil
	if reply := f.account(t, acctRequest(t, acctPacket(t, rfc2866.AcctStatusType_Value_Start), testSecret)); reply != nil {
		t.Errorf("got a reply with accounting off, want none")
	}
	if got := f.dropped("accounting_off"); got != 1 {
		t.Errorf("got %v drops counted as accounting_off, want 1", got)
	}
}
