package eap

import (
	"testing"
)

// FuzzInnerDecoders feeds arbitrary bytes to the decoders of what a peer
// sends inside or around the tunnel: EAP packets, the TLS framing, TTLS's
// AVPs, PEAP's MS-CHAPv2 response and Result TLV. None may panic, and what
// they accept must be what they were given.
func FuzzInnerDecoders(f *testing.F) {
	var chal [16]byte
	f.Add(identity(3, "alice"))
	f.Add(encodeFrame(flagLength|flagMore, 100, []byte{0x16, 3, 1}))
	f.Add(appendAVP(appendAVP(nil, avpUserName, []byte("bob")), avpUserPassword, []byte("pw\x00")))
	f.Add(msChallengePacket(7, chal, "clinicgate"))
	f.Add(append([]byte{TypeMSCHAPv2, msResponse, 7, 0, 59, 49}, make([]byte, 49+5)...))
	f.Add(resultTLV(CodeResponse, 9, tlvResultSuccess))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := Parse(b); err == nil && len(p.Encode()) != len(b) {
			t.Fatalf("parsed %d bytes into a packet of %d", len(b), len(p.Encode()))
		}
		if fr, err := parseFrame(b); err == nil && fr.total > maxMessage {
			t.Fatalf("a frame announcing %d bytes", fr.total)
		}
		parseAVPs(b)
		if r, err := parseMSResponse(b, 7); err == nil && (r.Ident != 7 || len(r.Name) == 0) {
			t.Fatalf("accepted %+v", r)
		}
		if st, err := parseResultTLV(b); err == nil && st != tlvResultSuccess && st != tlvResultFailure {
			t.Fatalf("status %d accepted", st)
		}
	})
}
