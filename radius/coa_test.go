package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"
)

// The fake NAS below checks requests and signs its answers from the RFC
// text (RFC 5176 §2.3 and §3.3, RFC 3579 §3.2), the way hostapd's
// radius_das does, never with the code under test.

const coaSecret = "das-secret"

// dasVerify checks a Disconnect/CoA-Request as hostapd does: the Request
// Authenticator is MD5(header, 16 zero octets, attributes, secret), and
// the Message-Authenticator is HMAC-MD5 over the packet with the
// authenticator and its own value zeroed.
func dasVerify(t *testing.T, b []byte, secret string) {
	t.Helper()
	h := md5.New()
	h.Write(b[:4])
	h.Write(make([]byte, 16))
	h.Write(b[20:])
	h.Write([]byte(secret))
	if got := h.Sum(nil); !bytes.Equal(got, b[4:20]) {
		t.Errorf("Request Authenticator %x, want %x", b[4:20], got)
	}
	off := findMA(t, b)
	buf := bytes.Clone(b)
	clear(buf[4:20])
	clear(buf[off : off+16])
	m := hmac.New(md5.New, []byte(secret))
	m.Write(buf)
	if got := m.Sum(nil); !bytes.Equal(got, b[off:off+16]) {
		t.Errorf("Message-Authenticator %x, want %x", b[off:off+16], got)
	}
}

func findMA(t *testing.T, b []byte) int {
	t.Helper()
	for i := 20; i+2 <= len(b); i += int(b[i+1]) {
		if b[i] == typeMA && b[i+1] == 18 {
			return i + 2
		}
		if b[i+1] < 2 {
			break
		}
	}
	t.Fatal("the request has no Message-Authenticator")
	return 0
}

// dasReply builds an answer to req with code and attributes attrs (raw
// type-length-value), signed with secret: a Message-Authenticator over the
// packet with the request's authenticator in place (unless noMA), then the
// Response Authenticator.
func dasReply(req []byte, code radius.Code, secret string, noMA bool, attrs ...byte) []byte {
	b := []byte{byte(code), req[1], 0, 0}
	b = append(b, req[4:20]...)
	off := 0
	if !noMA {
		b = append(b, typeMA, 18)
		off = len(b)
		b = append(b, make([]byte, 16)...)
	}
	b = append(b, attrs...)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if !noMA {
		m := hmac.New(md5.New, []byte(secret))
		m.Write(b)
		copy(b[off:], m.Sum(nil))
	}
	h := md5.New()
	h.Write(b)
	h.Write([]byte(secret))
	copy(b[4:20], h.Sum(nil))
	return b
}

func errorCauseAttr(c uint32) []byte {
	return []byte{101, 6, byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)}
}

// fakeNAS answers each request it receives with what answer returns
// (datagrams to send, from the NAS's own socket or another), counting
// what it received.
type fakeNAS struct {
	conn     net.PacketConn
	received atomic.Int32
	last     atomic.Value // []byte
}

func startNAS(t *testing.T, answer func(nas *fakeNAS, n int, req []byte, from net.Addr)) *fakeNAS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	nas := &fakeNAS{conn: conn}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			req := bytes.Clone(buf[:n])
			nas.last.Store(req)
			answer(nas, int(nas.received.Add(1)), req, from)
		}
	}()
	return nas
}

func (n *fakeNAS) addr() netip.AddrPort {
	return n.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func testDynAuthRequest(nas netip.AddrPort) DynAuthRequest {
	return DynAuthRequest{
		Kind: Disconnect, NAS: nas, Secret: []byte(coaSecret),
		UserName: "alice", CallingStation: "02-00-00-00-00-01", AcctSessionID: "5F3A9C0D11E2A4B7",
		NASIPAddress: netip.MustParseAddr("127.0.0.1"), NASIdentifier: "ap-lobby",
	}
}

func fastClient(t *testing.T) *DynAuthClient {
	return &DynAuthClient{Tries: 3, Wait: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
}

func TestDynAuthRequestEncoding(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, kind := range []DynAuthKind{Disconnect, CoA} {
		t.Run(kind.String(), func(t *testing.T) {
			r := testDynAuthRequest(netip.MustParseAddrPort("127.0.0.1:3799"))
			r.Kind, r.VLAN, r.FilterID = kind, 666, "quarantine"
			_, b, err := r.Encode(7, now)
			if err != nil {
				t.Fatal(err)
			}
			dasVerify(t, b, coaSecret)
			if b[20] != typeMA {
				t.Errorf("first attribute %d, want Message-Authenticator first", b[20])
			}
			p, err := radius.Parse(b, []byte(coaSecret))
			if err != nil {
				t.Fatal(err)
			}
			wantCode := map[DynAuthKind]radius.Code{Disconnect: 40, CoA: 43}[kind]
			if p.Code != wantCode || p.Identifier != 7 {
				t.Errorf("code %d id %d, want %d 7", p.Code, p.Identifier, wantCode)
			}
			for _, c := range []struct{ name, got, want string }{
				{"User-Name", rfc2865.UserName_GetString(p), "alice"},
				{"Calling-Station-Id", rfc2865.CallingStationID_GetString(p), "02-00-00-00-00-01"},
				{"Acct-Session-Id", rfc2866.AcctSessionID_GetString(p), "5F3A9C0D11E2A4B7"},
				{"NAS-Identifier", rfc2865.NASIdentifier_GetString(p), "ap-lobby"},
				{"NAS-IP-Address", rfc2865.NASIPAddress_Get(p).String(), "127.0.0.1"},
			} {
				if c.got != c.want {
					t.Errorf("%s %q, want %q", c.name, c.got, c.want)
				}
			}
			if got := rfc2869.EventTimestamp_Get(p); !got.Equal(now) {
				t.Errorf("Event-Timestamp %v, want %v", got, now)
			}
			_, vlan := rfc2868.TunnelPrivateGroupID_GetString(p)
			filter := rfc2865.FilterID_GetString(p)
			_, ttype := rfc2868.TunnelType_Get(p)
			if kind == CoA && (vlan != "666" || filter != "quarantine" || ttype != 13) {
				t.Errorf("CoA carries VLAN %q (type %d), Filter-Id %q; want 666 (13), quarantine", vlan, ttype, filter)
			}
			if kind == Disconnect && (vlan != "" || filter != "") {
				t.Errorf("Disconnect carries VLAN %q, Filter-Id %q; want neither", vlan, filter)
			}
		})
	}
}

func TestDynAuthRequestRefusesWhatCannotBeSent(t *testing.T) {
	base := testDynAuthRequest(netip.MustParseAddrPort("127.0.0.1:3799"))
	for name, r := range map[string]DynAuthRequest{
		"no secret":          func() DynAuthRequest { r := base; r.Secret = nil; return r }(),
		"no session":         func() DynAuthRequest { r := base; r.UserName, r.CallingStation, r.AcctSessionID = "", "", ""; return r }(),
		"CoA without VLAN":   func() DynAuthRequest { r := base; r.Kind = CoA; return r }(),
		"overlong user name": func() DynAuthRequest { r := base; r.UserName = string(make([]byte, 254)); return r }(),
	} {
		if _, _, err := r.Encode(1, time.Now()); err == nil {
			t.Errorf("%s: encoded, want an error", name)
		}
	}
}

func (n *fakeNAS) send(t *testing.T, b []byte, to net.Addr) {
	if _, err := n.conn.WriteTo(b, to); err != nil {
		t.Error(err)
	}
}

func TestDynAuthACK(t *testing.T) {
	nas := startNAS(t, func(nas *fakeNAS, _ int, req []byte, from net.Addr) {
		dasVerify(t, req, coaSecret)
		nas.send(t, dasReply(req, radius.CodeDisconnectACK, coaSecret, false), from)
	})
	res, err := fastClient(t).Send(t.Context(), testDynAuthRequest(nas.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != DynAuthACK || res.Tries != 1 || res.Dropped != 0 {
		t.Errorf("got %+v, want an ACK after one try", res)
	}
}

func TestDynAuthNAKSessionNotFound(t *testing.T) {
	nas := startNAS(t, func(nas *fakeNAS, _ int, req []byte, from net.Addr) {
		nas.send(t, dasReply(req, radius.CodeDisconnectNAK, coaSecret, false, errorCauseAttr(503)...), from)
	})
	res, err := fastClient(t).Send(t.Context(), testDynAuthRequest(nas.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != DynAuthNAK || res.ErrorCause != CauseSessionNotFound {
		t.Errorf("got %+v, want a NAK with Error-Cause 503", res)
	}
	if got, want := res.String(), `NAK 503 "Session Context Not Found" after 1 try`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestSilentNASTimesOut: a NAS that never answers gets the same packet
// Tries times, with a growing wait, and then a timeout.
func TestSilentNASTimesOut(t *testing.T) {
	var first []byte
	nas := startNAS(t, func(nas *fakeNAS, n int, req []byte, _ net.Addr) {
		if n == 1 {
			first = req
		} else if !bytes.Equal(req, first) {
			t.Errorf("retransmission %d differs from the first send", n)
		}
	})
	c := fastClient(t)
	start := time.Now()
	res, err := c.Send(t.Context(), testDynAuthRequest(nas.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != DynAuthTimeout || res.Tries != 3 {
		t.Errorf("got %+v, want a timeout after 3 tries", res)
	}
	// 100 + 200 + 400 ms of waiting: the waits double.
	if el := time.Since(start); el < 700*time.Millisecond {
		t.Errorf("gave up after %v, want at least 700ms (100+200+400)", el)
	}
	if got := nas.received.Load(); got != 3 {
		t.Errorf("the NAS received %d requests, want 3", got)
	}
}

// TestSpoofedACKIgnored: forged answers (wrong secret, no
// Message-Authenticator, wrong identifier, from another address) are
// dropped, and the NAS's own later NAK is what counts.
func TestSpoofedACKIgnored(t *testing.T) {
	other, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	nas := startNAS(t, func(nas *fakeNAS, _ int, req []byte, from net.Addr) {
		wrongID := bytes.Clone(req)
		wrongID[1]++
		for _, forged := range [][]byte{
			dasReply(req, radius.CodeDisconnectACK, "not-the-secret", false),
			dasReply(req, radius.CodeDisconnectACK, coaSecret, true),
			dasReply(wrongID, radius.CodeDisconnectACK, coaSecret, false),
			dasReply(req, radius.CodeCoAACK, coaSecret, false),
		} {
			nas.send(t, forged, from)
		}
		// A perfect ACK, but from an address that is not the NAS's.
		if _, err := other.WriteTo(dasReply(req, radius.CodeDisconnectACK, coaSecret, false), from); err != nil {
			t.Error(err)
		}
		time.Sleep(20 * time.Millisecond)
		nas.send(t, dasReply(req, radius.CodeDisconnectNAK, coaSecret, false, errorCauseAttr(503)...), from)
	})
	res, err := fastClient(t).Send(t.Context(), testDynAuthRequest(nas.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != DynAuthNAK || res.ErrorCause != CauseSessionNotFound || res.Dropped != 5 {
		t.Errorf("got %+v, want the real NAK 503 with 5 forged replies dropped", res)
	}
}

// TestSpoofedACKAloneTimesOut: a forged ACK is not an answer, however
// many come.
func TestSpoofedACKAloneTimesOut(t *testing.T) {
	nas := startNAS(t, func(nas *fakeNAS, _ int, req []byte, from net.Addr) {
		nas.send(t, dasReply(req, radius.CodeDisconnectACK, "guessed", false), from)
	})
	res, err := fastClient(t).Send(t.Context(), testDynAuthRequest(nas.addr()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != DynAuthTimeout || res.Dropped != 3 {
		t.Errorf("got %+v, want a timeout with 3 forged ACKs dropped", res)
	}
}

func TestDynAuthSendStopsWithContext(t *testing.T) {
	nas := startNAS(t, func(*fakeNAS, int, []byte, net.Addr) {})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	c := &DynAuthClient{Tries: 3, Wait: 5 * time.Second}
	start := time.Now()
	if _, err := c.Send(ctx, testDynAuthRequest(nas.addr())); err == nil {
		t.Error("got no error, want the context's")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("returned after %v, want soon after the context ended", el)
	}
}

// FuzzDynAuthAnswer: whatever arrives on the request's socket, reading it
// never panics, and only a datagram signed with the secret, from the NAS,
// for this request, is taken as an answer.
func FuzzDynAuthAnswer(f *testing.F) {
	r := testDynAuthRequest(netip.MustParseAddrPort("127.0.0.1:3799"))
	_, req, err := r.Encode(9, time.Unix(1_800_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dasReply(req, radius.CodeDisconnectACK, coaSecret, false))
	f.Add(dasReply(req, radius.CodeDisconnectNAK, coaSecret, false, errorCauseAttr(503)...))
	f.Add(dasReply(req, radius.CodeDisconnectACK, "wrong", false))
	f.Add(dasReply(req, radius.CodeDisconnectACK, coaSecret, true))
	f.Add([]byte{41, 9, 0, 20})
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3799}
	f.Fuzz(func(t *testing.T, b []byte) {
		outcome, _, why := r.answer(b, from, req)
		if why == "" {
			// An accepted answer must verify independently.
			h := md5.New()
			n := int(binary.BigEndian.Uint16(b[2:4]))
			h.Write(b[:4])
			h.Write(req[4:20])
			h.Write(b[20:n])
			h.Write([]byte(coaSecret))
			if !bytes.Equal(h.Sum(nil), b[4:20]) || (outcome != DynAuthACK && outcome != DynAuthNAK) {
				t.Fatalf("accepted %x as %s", b, outcome)
			}
		}
	})
}
