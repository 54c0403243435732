package eap

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"layeh.com/radius/rfc2759"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/eap/eaptest"
	"github.com/clinicgate/clinicgate/internal/selfcert"
)

// driver plays a PEAP or EAP-TLS peer against the server: a crypto/tls
// client run as the server runs its own tunnel, fragments at 1000 bytes,
// acknowledgements included.
type driver struct {
	t       *testing.T
	s       *Server
	b       appliance.Request
	methods []string
	state   []byte
	id      byte
	method  byte
	cli     *tunnel
	pending []byte // the client's TLS records still to send
	cliErr  error  // the client's TLS failed (an alert came)
}

const password = "correct horse battery"

func newDriver(t *testing.T, s *Server, method byte, outer string, cfg *tls.Config) *driver {
	t.Helper()
	d := &driver{t: t, s: s, b: base(nasA, "02-00-00-00-00-07"), method: method}
	rep := s.Handle(t.Context(), Request{Base: d.b, EAP: identity(7, outer)})
	p, err := Parse(rep.EAP)
	if rep.Outcome != Challenge || err != nil {
		t.Fatalf("identity answered with %v %x", rep.Outcome, rep.EAP)
	}
	d.state, d.id = rep.State, p.Identifier
	if p.Type != method {
		// The first method offered is TTLS: ask for ours.
		rep = d.handle(Packet{Code: CodeResponse, Identifier: d.id, Type: TypeNAK, Data: []byte{method}}.Encode())
		if p, err = Parse(rep.EAP); rep.Outcome != Challenge || err != nil || p.Type != method || p.Data[0]&flagStart == 0 {
			t.Fatalf("the NAK for %d got %v %x, want its Start", method, rep.Outcome, rep.EAP)
		}
	}
	if method == TypePEAP && p.Data[0]&versionBit != 0 {
		t.Fatalf("PEAP Start with version %d, want 0", p.Data[0]&versionBit)
	}
	d.cli = newTunnel(func(c net.Conn) *tls.Conn { return tls.Client(c, cfg) }, true)
	t.Cleanup(d.cli.close)
	res, err := d.cli.wait(t.Context(), stepResult{})
	if err != nil || res.err != nil {
		t.Fatalf("ClientHello: %v %v", err, res.err)
	}
	d.pending = res.out
	return d
}

func (d *driver) handle(eapMsg []byte) Reply {
	rep := d.s.Handle(d.t.Context(), Request{Base: d.b, EAP: eapMsg, State: d.state, Methods: d.methods})
	if rep.Outcome == Challenge {
		p, err := Parse(rep.EAP)
		if err != nil {
			d.t.Fatal(err)
		}
		d.id = p.Identifier
	}
	return rep
}

func (d *driver) frame(flags byte, total int, data []byte) []byte {
	return Packet{Code: CodeResponse, Identifier: d.id, Type: d.method, Data: encodeFrame(flags, total, data)}.Encode()
}

// send sends TLS records (none: an empty response) and returns the reply
// to the last fragment.
func (d *driver) send(msg []byte) Reply {
	if len(msg) == 0 {
		return d.handle(d.frame(0, 0, nil))
	}
	for off := 0; ; {
		n := min(len(msg)-off, 1000)
		var flags byte
		if off == 0 {
			flags = flagLength
		}
		if off+n < len(msg) {
			flags |= flagMore
		}
		rep := d.handle(d.frame(flags, len(msg), msg[off:off+n]))
		off += n
		if flags&flagMore == 0 {
			return rep
		}
		if p, _ := Parse(rep.EAP); rep.Outcome != Challenge || !bytes.Equal(p.Data, []byte{0}) {
			d.t.Fatalf("a fragment got %v %x, want an ACK", rep.Outcome, rep.EAP)
		}
	}
}

// collect gathers the server's TLS data of a Challenge, acknowledging its
// fragments.
func (d *driver) collect(rep *Reply) []byte {
	var in []byte
	for {
		p, err := Parse(rep.EAP)
		if err != nil || p.Type != d.method {
			d.t.Fatalf("the server sent %x (%v)", rep.EAP, err)
		}
		f, err := parseFrame(p.Data)
		if err != nil {
			d.t.Fatal(err)
		}
		in = append(in, f.data...)
		if f.flags&flagMore == 0 {
			return in
		}
		if *rep = d.handle(d.frame(0, 0, nil)); rep.Outcome != Challenge {
			d.t.Fatalf("an ACK got %v", rep.Outcome)
		}
	}
}

// step sends the client's pending records and, encrypted, inner; it
// returns the application data the client then received, or the server's
// final reply.
func (d *driver) step(inner []byte) ([][]byte, *Reply) {
	out := d.pending
	d.pending = nil
	if inner != nil {
		o, err := d.cli.write(inner)
		if err != nil {
			d.t.Fatal(err)
		}
		out = append(out, o...)
	}
	rep := d.send(out)
	for {
		if rep.Outcome != Challenge {
			return nil, &rep
		}
		in := d.collect(&rep)
		res, err := d.cli.step(d.t.Context(), in)
		if err != nil {
			d.t.Fatal(err)
		}
		if res.err != nil {
			// The server's alert: acknowledge it, as a supplicant does.
			d.cliErr = res.err
			rep = d.send(nil)
			continue
		}
		if len(res.out) > 0 && d.cli.state == nil {
			rep = d.send(res.out)
			continue
		}
		d.pending = res.out
		return res.app, nil
	}
}

// handshake runs the TLS handshake and returns the first application data
// the server sends (PEAP's inner identity request, EAP-TLS 1.3's
// commitment), or its final reply.
func (d *driver) handshake() ([][]byte, *Reply) {
	for range 10 {
		app, final := d.step(nil)
		if final != nil || len(app) > 0 {
			return app, final
		}
	}
	d.t.Fatal("no application data after 10 rounds")
	return nil, nil
}

// next is step, expecting exactly one inner packet back.
func (d *driver) next(inner []byte) []byte {
	d.t.Helper()
	app, final := d.step(inner)
	return wantOnlyPacket(d.t, app, final)
}

// first is handshake, expecting exactly one inner packet back.
func (d *driver) first() []byte {
	d.t.Helper()
	app, final := d.handshake()
	return wantOnlyPacket(d.t, app, final)
}

func wantOnlyPacket(t *testing.T, app [][]byte, final *Reply) []byte {
	t.Helper()
	if final != nil {
		t.Fatalf("the conversation ended with %v (%s), want an inner packet", final.Outcome, final.Decision.Reason)
	}
	if len(app) != 1 {
		t.Fatalf("%d inner packets, want 1", len(app))
	}
	return app[0]
}

func peapServer(t *testing.T) (*Server, *eaptest.Decider, *tls.Config) {
	cfg, roots := testTLS(t)
	g := &eaptest.Decider{Users: map[string]string{"alice": password}}
	return &Server{Gate: g, TLS: cfg}, g, &tls.Config{RootCAs: roots, ServerName: serverName(t)}
}

// peerResponse is the peer's header-less EAP-MSCHAPv2 Response to a
// challenge, for name (hashed without its domain) and pw.
func peerResponse(t *testing.T, challenge []byte, name, pw string) []byte {
	t.Helper()
	if len(challenge) < 22 || challenge[0] != TypeMSCHAPv2 || challenge[1] != msChallenge || challenge[5] != 16 {
		t.Fatalf("not an MS-CHAPv2 challenge: %x", challenge)
	}
	auth := challenge[6:22]
	var peer [16]byte
	rand.Read(peer[:])
	user := name
	if _, u, ok := strings.Cut(name, `\`); ok {
		user = u
	}
	nt, err := rfc2759.GenerateNTResponse(auth, peer[:], []byte(user), []byte(pw))
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{TypeMSCHAPv2, msResponse, challenge[2], 0, 0, 49}
	b = append(b, peer[:]...)
	b = append(b, make([]byte, 8)...)
	b = append(b, nt...)
	b = append(b, 0)
	b = append(b, name...)
	binary.BigEndian.PutUint16(b[3:5], uint16(len(b)-1))
	return b
}

// peapToResult runs PEAP up to the peer's answer to the MS-CHAPv2 result
// and returns the Result TLV the server then sends.
func peapToResult(t *testing.T, d *driver, name, pw string) []byte {
	t.Helper()
	req := d.first()
	if !bytes.Equal(req, []byte{TypeIdentity}) {
		t.Fatalf("inner request %x, want a header-less EAP-Request/Identity", req)
	}
	chal := d.next(append([]byte{TypeIdentity}, name...))
	result := d.next(peerResponse(t, chal, name, pw))
	if len(result) < 2 || result[0] != TypeMSCHAPv2 {
		t.Fatalf("inner %x, want an MS-CHAPv2 Success or Failure", result)
	}
	return d.next([]byte{TypeMSCHAPv2, result[1]})
}

func TestPEAPConversation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version uint16
		label   string
		context []byte
		note    string
	}{
		{"TLS 1.2", tls.VersionTLS12, "client EAP encryption", nil, "eap_peap_tls12"},
		{"TLS 1.3", tls.VersionTLS13, "EXPORTER_EAP_TLS_Key_Material", []byte{0x19}, "eap_peap_tls13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, g, cfg := peapServer(t)
			cfg.MinVersion, cfg.MaxVersion = tc.version, tc.version
			d := newDriver(t, s, TypePEAP, "anonymous", cfg)
			tlv := peapToResult(t, d, `CLINIC\alice`, password)
			if !bytes.Equal(tlv, resultTLV(CodeRequest, d.id, tlvResultSuccess)) {
				t.Fatalf("got %x, want a Result TLV (success) with its EAP header", tlv)
			}
			app, final := d.step(resultTLV(CodeResponse, d.id, tlvResultSuccess))
			if final == nil || final.Outcome != Accept || len(app) != 0 {
				t.Fatalf("the Result TLV's success got %v", final)
			}
			if p, err := Parse(final.EAP); err != nil || p.Code != CodeSuccess || final.Decision.Outcome != appliance.Accept || final.Decision.User != "alice" {
				t.Fatalf("accept carries %x and decision %+v, want EAP-Success and the gate's decision", final.EAP, final.Decision)
			}
			if final.Decision.MSCHAP != nil {
				t.Fatal("the Accept still carries the inner MS-CHAPv2 result for the door to send again")
			}
			st := d.cli.conn.ConnectionState()
			want, err := st.ExportKeyingMaterial(tc.label, tc.context, 128)
			if err != nil || !bytes.Equal(final.MSK, want[:64]) {
				t.Fatalf("the server's MSK differs from the peer's (%v)", err)
			}
			req := g.Last(t)
			if req.Method != appliance.MethodPEAP || req.User != "alice" || req.MSCHAP == nil || req.MSCHAP.Name != `CLINIC\alice` ||
				req.OuterIdentity != "anonymous" || !slices.Contains(req.Notes, tc.note) || req.OuterIdentity != "anonymous" || !strings.HasPrefix(req.TLS, "TLS 1.") {
				t.Fatalf("the gate got %+v", req)
			}
			if s.Len() != 0 {
				t.Fatalf("%d sessions, want 0", s.Len())
			}
		})
	}
}

// TestPEAPInnerIdentityDifferingFromOuterPassedThrough: the gate sees
// both, and decides (here it accepts bob's own password; the policy may
// refuse, which is the gate's).
func TestPEAPInnerIdentityDifferingFromOuterPassedThrough(t *testing.T) {
	s, g, cfg := peapServer(t)
	g.Users["bob"] = "bobs password"
	d := newDriver(t, s, TypePEAP, "alice@clinic.example", cfg)
	peapToResult(t, d, "bob", "bobs password")
	if _, final := d.step(resultTLV(CodeResponse, d.id, tlvResultSuccess)); final == nil || final.Outcome != Accept {
		t.Fatalf("got %v, want Accept", final)
	}
	if req := g.Last(t); req.User != "bob" || req.OuterIdentity != "alice@clinic.example" {
		t.Fatalf("the gate got user %q outer %q, want bob and alice@clinic.example", req.User, req.OuterIdentity)
	}
}

func TestPEAPWrongPasswordEndsInFailure(t *testing.T) {
	s, g, cfg := peapServer(t)
	d := newDriver(t, s, TypePEAP, "alice", cfg)
	tlv := peapToResult(t, d, "alice", "wrong")
	if !bytes.Equal(tlv, resultTLV(CodeRequest, d.id, tlvResultFailure)) {
		t.Fatalf("got %x, want a Result TLV (failure)", tlv)
	}
	_, final := d.step(resultTLV(CodeResponse, d.id, tlvResultFailure))
	if final == nil || final.Outcome != Reject || final.MSK != nil || final.Decision.Reason != appliance.ReasonBadPassword {
		t.Fatalf("got %+v, want a Reject for bad_password without keys", final)
	}
	if req := g.Last(t); req.Method != appliance.MethodPEAP || req.Invalid != "" {
		t.Fatalf("the last request was %+v, want the PEAP login itself", req)
	}
}

// TestPEAPResultTLVFailureRefused: the gate accepted, but the peer answers
// the Result TLV with failure (it could not check the server's proof):
// EAP-Failure, no keys, and the refusal audited.
func TestPEAPResultTLVFailureRefused(t *testing.T) {
	s, g, cfg := peapServer(t)
	d := newDriver(t, s, TypePEAP, "alice", cfg)
	peapToResult(t, d, "alice", password)
	_, final := d.step(resultTLV(CodeResponse, d.id, tlvResultFailure))
	if final == nil || final.Outcome != Reject || final.MSK != nil || final.Decision.Outcome != appliance.Reject {
		t.Fatalf("got %+v, want a Reject without keys", final)
	}
	req := g.Last(t)
	if req.Invalid != appliance.ReasonBadRequest || !slices.ContainsFunc(req.Notes, func(n string) bool { return strings.Contains(n, "Result TLV with failure") }) ||
		!slices.Contains(req.Notes, "eap_peap_tls13") {
		t.Fatalf("the gate got Invalid %q notes %q", req.Invalid, req.Notes)
	}
}

// TestPEAPInnerWrongLengthsRefused: inner packets whose lengths do not
// add up are refused, never read past or accepted.
func TestPEAPInnerWrongLengthsRefused(t *testing.T) {
	type stage int
	const (
		atResponse stage = iota
		atResult
	)
	for _, tc := range []struct {
		name  string
		at    stage
		bend  func([]byte) []byte
		note  string
		after bool // the gate accepted before
	}{
		{"MS-Length one too many", atResponse, func(b []byte) []byte { b[4]++; return b }, "MS-Length", false},
		{"MS-Length one too few", atResponse, func(b []byte) []byte { b[4]--; return b }, "MS-Length", false},
		{"response cut short", atResponse, func(b []byte) []byte { return b[:40] }, "bytes", false},
		{"Value-Size 48", atResponse, func(b []byte) []byte { b[5] = 48; return b }, "Value-Size", false},
		{"TLV packet length above its data", atResult, func(b []byte) []byte { b[3]++; return b }, "length field", true},
		{"Result TLV of 3 bytes", atResult, func(b []byte) []byte { b[8] = 3; return append(b, 0) }, "", true},
		{"truncated TLV header", atResult, func(b []byte) []byte { b = b[:7]; b[3] = 7; return b }, "truncated", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, g, cfg := peapServer(t)
			d := newDriver(t, s, TypePEAP, "alice", cfg)
			d.first()
			chal := d.next(append([]byte{TypeIdentity}, "alice"...))
			resp := peerResponse(t, chal, "alice", password)
			var final *Reply
			if tc.at == atResponse {
				_, final = d.step(tc.bend(resp))
			} else {
				d.next(resp)
				d.next([]byte{TypeMSCHAPv2, msSuccess})
				_, final = d.step(tc.bend(resultTLV(CodeResponse, d.id, tlvResultSuccess)))
			}
			if final == nil || final.Outcome != Reject || final.MSK != nil {
				t.Fatalf("got %+v, want a Reject without keys", final)
			}
			req := g.Last(t)
			if req.Invalid != appliance.ReasonBadRequest || !slices.ContainsFunc(req.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Fatalf("the gate got Invalid %q notes %q, want bad_request with %q", req.Invalid, req.Notes, tc.note)
			}
			if n := len(g.Requests()); (n == 2) != tc.after {
				t.Fatalf("the gate was asked %d times", n)
			}
		})
	}
}

// tlsServer has the CA's anchors and CRLs.
func tlsServer(t *testing.T, ca *eaptest.CA, crls ...*x509.RevocationList) (*Server, *eaptest.Decider) {
	cfg, _ := testTLS(t)
	g := &eaptest.Decider{Users: map[string]string{"alice": password}}
	return &Server{Gate: g, TLS: cfg, ClientCAs: ca.Pool(), CRLs: func() ([]*x509.RevocationList, error) { return crls, nil }}, g
}

func clientTLS(t *testing.T, leaf eaptest.Leaf, version uint16) *tls.Config {
	_, roots := testTLS(t)
	pair, err := tls.LoadX509KeyPair(leaf.CertFile, leaf.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: roots, ServerName: serverName(t), Certificates: []tls.Certificate{pair}, MinVersion: version, MaxVersion: version}
}

func TestEAPTLSConversation(t *testing.T) {
	ca := eaptest.NewCA(t, "Clinic Devices CA")
	leaf := ca.Issue(t, "alice-laptop", "alice@clinic.example", "alice@mail.example", time.Time{}, time.Time{})
	for _, tc := range []struct {
		name    string
		version uint16
		label   string
		context []byte
		note    string
	}{
		{"TLS 1.2", tls.VersionTLS12, "client EAP encryption", nil, "eap_tls_tls12"},
		{"TLS 1.3", tls.VersionTLS13, "EXPORTER_EAP_TLS_Key_Material", []byte{0x0d}, "eap_tls_tls13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, g := tlsServer(t, ca)
			g.Users["alice@clinic.example"] = "" // mapped by its UPN
			d := newDriver(t, s, TypeTLS, "host/alice-laptop", clientTLS(t, leaf, tc.version))
			app, final := d.handshake()
			if tc.version == tls.VersionTLS13 {
				// RFC 9190 §2.1.1: the commitment message, then the ACK.
				if got := wantOnlyPacket(t, app, final); !bytes.Equal(got, []byte{0}) {
					t.Fatalf("got %x, want the commitment message 00", got)
				}
				_, final = d.step(nil)
			}
			if final == nil || final.Outcome != Accept || final.Decision.User != "alice@clinic.example" {
				t.Fatalf("got %+v, want the gate's Accept", final)
			}
			st := d.cli.conn.ConnectionState()
			want, err := st.ExportKeyingMaterial(tc.label, tc.context, 128)
			if err != nil || !bytes.Equal(final.MSK, want[:64]) {
				t.Fatalf("the server's MSK differs from the peer's (%v)", err)
			}
			req := g.Last(t)
			c := req.Cert
			if req.Method != appliance.MethodEAPTLS || req.User != "host/alice-laptop" || req.OuterIdentity != "" || c == nil || !slices.Contains(req.Notes, tc.note) {
				t.Fatalf("the gate got %+v", req)
			}
			wantCert := appliance.Certificate{
				Fingerprint: selfcert.FingerprintDER(leaf.Cert.Raw), Serial: leaf.Cert.SerialNumber.Text(16), Subject: "alice-laptop", Issuer: "Clinic Devices CA",
				UPNs: []string{"alice@clinic.example"}, Emails: []string{"alice@mail.example"}, NotAfter: leaf.Cert.NotAfter,
			}
			if !equalCert(*c, wantCert) {
				t.Fatalf("the gate got certificate %+v, want %+v", *c, wantCert)
			}
		})
	}
}

func equalCert(a, b appliance.Certificate) bool {
	return a.Fingerprint == b.Fingerprint && a.Serial == b.Serial && a.Subject == b.Subject && a.Issuer == b.Issuer &&
		slices.Equal(a.UPNs, b.UPNs) && slices.Equal(a.Emails, b.Emails) && a.NotAfter.Equal(b.NotAfter)
}

// TestClientCertificateRefusals: another CA's certificate, an expired or
// not yet valid one, a revoked one and one without client-auth usage are
// refused in the handshake with an alert, then EAP-Failure, the reason
// audited; the gate is never asked to map them.
func TestClientCertificateRefusals(t *testing.T) {
	ca := eaptest.NewCA(t, "Clinic Devices CA")
	revokedLeaf := ca.Issue(t, "stolen-laptop", "", "", time.Time{}, time.Time{})
	crl, _ := ca.CRL(t, revokedLeaf.Cert)
	// A CRL of the same name from another key revokes nothing.
	impostor := eaptest.NewCA(t, "Clinic Devices CA")
	bogus, _ := impostor.CRL(t, ca.Issue(t, "alice", "", "", time.Time{}, time.Time{}).Cert)
	for _, tc := range []struct {
		name   string
		leaf   eaptest.Leaf
		reason appliance.Reason
		crlErr error
	}{
		{"another CA", eaptest.NewCA(t, "Someone Else CA").Issue(t, "alice", "", "", time.Time{}, time.Time{}), appliance.ReasonCertUntrusted, nil},
		{"same CA name, another key", impostor.Issue(t, "alice", "", "", time.Time{}, time.Time{}), appliance.ReasonCertUntrusted, nil},
		{"expired", ca.Issue(t, "alice", "", "", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)), appliance.ReasonCertExpired, nil},
		{"not yet valid", ca.Issue(t, "alice", "", "", time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)), appliance.ReasonCertExpired, nil},
		{"revoked", revokedLeaf, appliance.ReasonCertRevoked, nil},
		{"CRL unreadable", ca.Issue(t, "alice", "", "", time.Time{}, time.Time{}), appliance.ReasonInternal, errors.New("disk gone")},
	} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tc.name+" "+tlsVersionName(v), func(t *testing.T) {
				s, g := tlsServer(t, ca, bogus, crl)
				if tc.crlErr != nil {
					s.CRLs = func() ([]*x509.RevocationList, error) { return nil, tc.crlErr }
				}
				d := newDriver(t, s, TypeTLS, "alice", clientTLS(t, tc.leaf, v))
				_, final := d.handshake()
				if final == nil || final.Outcome != Reject || final.MSK != nil {
					t.Fatalf("got %+v, want a Reject without keys", final)
				}
				if d.cliErr == nil {
					t.Fatal("the peer got no TLS alert before the EAP-Failure")
				}
				req := g.Last(t)
				if len(g.Requests()) != 1 || req.Invalid != tc.reason || req.Method != appliance.MethodEAP || !slices.Contains(req.Notes, "eap_tls") {
					t.Fatalf("the gate got %d requests, the last Invalid %q notes %q; want one refusal for %s", len(g.Requests()), req.Invalid, req.Notes, tc.reason)
				}
			})
		}
	}
	t.Run("a CRL of another key is ignored", func(t *testing.T) {
		s, _ := tlsServer(t, ca, bogus)
		leaf := ca.Issue(t, "alice", "", "", time.Time{}, time.Time{})
		d := newDriver(t, s, TypeTLS, "alice", clientTLS(t, leaf, tls.VersionTLS12))
		if _, final := d.handshake(); final == nil || final.Outcome != Accept {
			t.Fatalf("got %+v, want Accept", final)
		}
	})
}

// TestCRLFileReloaded: a CRL file is read again when it changes, at most
// once a second, and a broken replacement keeps the last good list.
func TestCRLFileReloaded(t *testing.T) {
	ca := eaptest.NewCA(t, "Clinic Devices CA")
	a := ca.Issue(t, "a", "", "", time.Time{}, time.Time{})
	b := ca.Issue(t, "b", "", "", time.Time{}, time.Time{})
	_, first := ca.CRL(t, a.Cert)
	_, second := ca.CRL(t, a.Cert, b.Cert)
	path := filepath.Join(t.TempDir(), "clinic.crl")
	copyFile(t, first, path)
	now := time.Now()
	f, err := openCRLFile(t.Context(), path, discardLog(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		crls, err := f.CRLs()
		if err != nil || len(crls) != 1 {
			t.Fatalf("%v %v", crls, err)
		}
		return len(crls[0].RevokedCertificateEntries)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d revoked, want 1", n)
	}
	copyFile(t, second, path)
	if n := count(); n != 1 {
		t.Fatalf("%d revoked within the second, want the old 1", n)
	}
	now = now.Add(1100 * time.Millisecond)
	if n := count(); n != 2 {
		t.Fatalf("%d revoked after the change, want 2", n)
	}
	if err := os.WriteFile(path, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(1100 * time.Millisecond)
	if n := count(); n != 2 {
		t.Fatalf("%d revoked after a broken write, want the last good 2", n)
	}
	if _, err := openCRLFile(t.Context(), path, discardLog(), nil); err == nil {
		t.Fatal("a broken CRL file opened")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
