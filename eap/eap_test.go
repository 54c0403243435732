package eap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/internal/tlspipe"
)

// fakeGate accepts alice with "secret" and records every request.
type fakeGate struct {
	mu   sync.Mutex
	reqs []appliance.Request
}

func (g *fakeGate) Decide(_ context.Context, req appliance.Request) (appliance.Decision, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reqs = append(g.reqs, req)
	if req.Invalid == "" && req.Method == appliance.MethodTTLSPAP && req.User == "alice" && string(req.Password) == "secret" {
		return appliance.Decision{Outcome: appliance.Accept, Reason: appliance.ReasonOK, User: "alice"}, nil
	}
	reason := appliance.ReasonBadPassword
	if req.Invalid != "" {
		reason = req.Invalid
	}
	return appliance.Decision{Outcome: appliance.Reject, Reason: reason}, nil
}

func (g *fakeGate) last(t *testing.T) appliance.Request {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.reqs) == 0 {
		t.Fatal("the gate was never asked")
	}
	return g.reqs[len(g.reqs)-1]
}

var (
	certOnce       sync.Once
	certDir        string
	serverTLS      *tls.Config
	clientRoots    *x509.CertPool
	certOnceFailed error
)

func testTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	certOnce.Do(func() {
		dir, err := os.MkdirTemp("", "eap-test")
		if err != nil {
			certOnceFailed = err
			return
		}
		certDir = dir
		cp, kp, _, err := EnsureCertificate(dir)
		if err != nil {
			certOnceFailed = err
			return
		}
		if serverTLS, err = TLSConfig(cp, kp); err != nil {
			certOnceFailed = err
			return
		}
		pemBytes, err := os.ReadFile(cp)
		if err != nil {
			certOnceFailed = err
			return
		}
		clientRoots = x509.NewCertPool()
		clientRoots.AppendCertsFromPEM(pemBytes)
	})
	if certOnceFailed != nil {
		t.Fatal(certOnceFailed)
	}
	return serverTLS, clientRoots
}

func TestMain(m *testing.M) {
	code := m.Run()
	if certDir != "" {
		os.RemoveAll(certDir)
	}
	os.Exit(code)
}

func newServer(t *testing.T) (*Server, *fakeGate) {
	cfg, _ := testTLS(t)
	g := &fakeGate{}
	return &Server{Gate: g, TLS: cfg}, g
}

var (
	nasA = netip.MustParseAddr("192.0.2.10")
	nasB = netip.MustParseAddr("192.0.2.11")
)

func base(src netip.Addr, station string) appliance.Request {
	return appliance.Request{
		Door: appliance.DoorRADIUS, Client: appliance.Client{Name: "ap-" + src.String()}, Source: src,
		Device: station, Method: appliance.MethodEAP, User: "anonymous",
	}
}

func identity(id byte, name string) []byte {
	return Packet{Code: CodeResponse, Identifier: id, Type: TypeIdentity, Data: []byte(name)}.Encode()
}

func ttlsResponse(id byte, flags byte, total int, data []byte) []byte {
	return Packet{Code: CodeResponse, Identifier: id, Type: TypeTTLS, Data: encodeFrame(flags, total, data)}.Encode()
}

// start opens a conversation and returns its State and the Identifier to
// answer.
func start(t *testing.T, s *Server, b appliance.Request) ([]byte, byte) {
	t.Helper()
	rep := s.Handle(context.Background(), Request{Base: b, EAP: identity(7, "anonymous")})
	if rep.Outcome != Challenge || len(rep.State) == 0 {
		t.Fatalf("identity: outcome %v, want a Challenge with State", rep.Outcome)
	}
	p, err := Parse(rep.EAP)
	if err != nil || p.Code != CodeRequest || p.Type != TypeTTLS || p.Identifier != 8 || len(p.Data) != 1 || p.Data[0]&flagStart == 0 {
		t.Fatalf("identity answered with %+v (%v), want an EAP-TTLS Start with Identifier 8", p, err)
	}
	return rep.State, p.Identifier
}

func wantRefused(t *testing.T, g *fakeGate, rep Reply, note string) {
	t.Helper()
	wantRefusedFor(t, g, rep, appliance.ReasonBadRequest, note)
}

func wantRefusedFor(t *testing.T, g *fakeGate, rep Reply, reason appliance.Reason, note string) {
	t.Helper()
	if rep.Outcome != Reject || !rep.Decided || rep.MSK != nil {
		t.Fatalf("outcome %v decided %v, want a Reject from the gate without keys", rep.Outcome, rep.Decided)
	}
	if p, err := Parse(rep.EAP); err != nil || p.Code != CodeFailure {
		t.Fatalf("reject carries %x, want an EAP-Failure", rep.EAP)
	}
	req := g.last(t)
	if req.Invalid != reason || !slices.ContainsFunc(req.Notes, func(n string) bool { return strings.Contains(n, note) }) {
		t.Fatalf("the gate got Invalid %q notes %q, want %s and a note with %q", req.Invalid, req.Notes, reason, note)
	}
}

func TestParseLengths(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short header", []byte{2, 1, 0}},
		{"length above the data", []byte{2, 1, 0, 10, 1, 'a'}},
		{"length below the data", []byte{2, 1, 0, 5, 1, 'a', 'b'}},
		{"length zero", []byte{2, 1, 0, 0, 1}},
		{"response without a type", []byte{2, 1, 0, 4}},
		{"success with data", []byte{3, 1, 0, 5, 0}},
		{"unknown code", []byte{9, 1, 0, 4}},
	} {
		if _, err := Parse(tc.b); err == nil {
			t.Errorf("%s: %x parsed", tc.name, tc.b)
		}
	}
	p, err := Parse(identity(3, "bob"))
	if err != nil || p.Code != CodeResponse || p.Identifier != 3 || p.Type != TypeIdentity || string(p.Data) != "bob" {
		t.Fatalf("identity: %+v %v", p, err)
	}
	if _, err := parseFrame([]byte{flagLength, 0, 1}); err == nil {
		t.Error("a TTLS length flag with a 2-byte length parsed")
	}
	if _, err := parseFrame([]byte{flagLength, 0, 0, 0, 1, 'a', 'b'}); err == nil {
		t.Error("a TTLS fragment longer than its total parsed")
	}
}

func TestWrongLengthsRefused(t *testing.T) {
	s, g := newServer(t)
	b := base(nasA, "02-00-00-00-00-01")
	rep := s.Handle(context.Background(), Request{Base: b, EAP: []byte{2, 1, 0, 40, 1, 'a'}})
	wantRefused(t, g, rep, "length field")
	state, id := start(t, s, b)
	bad := ttlsResponse(id, 0, 0, []byte{0x16, 3, 1})
	bad[3]++ // one more than what is there
	rep = s.Handle(context.Background(), Request{Base: b, EAP: bad, State: state})
	wantRefused(t, g, rep, "length field")
	if s.Len() != 1 {
		// Nothing the peer sent belonged to the session: it stays.
		t.Fatalf("%d sessions, want 1", s.Len())
	}
}

func TestFragmentsBeyondCapRefused(t *testing.T) {
	s, g := newServer(t)
	b := base(nasA, "02-00-00-00-00-01")

	// An announced length above 64 KiB.
	state, id := start(t, s, b)
	rep := s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, flagLength|flagMore, maxMessage+1, make([]byte, 100)), State: state})
	wantRefused(t, g, rep, "cap")

	// No length announced, fragments that keep coming.
	state, id = start(t, s, b)
	chunk := make([]byte, 1000)
	for i := 0; ; i++ {
		rep = s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, flagMore, 0, chunk), State: state})
		if rep.Outcome != Challenge {
			break
		}
		if i > maxMessage/len(chunk)+1 {
			t.Fatalf("%d fragments of %d bytes acknowledged", i, len(chunk))
		}
		p, err := Parse(rep.EAP)
		if err != nil || p.Type != TypeTTLS || !bytes.Equal(p.Data, []byte{0}) {
			t.Fatalf("fragment %d answered with %x, want an empty EAP-TTLS ACK", i, rep.EAP)
		}
		id = p.Identifier
	}
	wantRefused(t, g, rep, "cap")
	if s.Len() != 0 {
		t.Fatalf("%d sessions after the refusals, want 0", s.Len())
	}
}

func TestStateFromAnotherStationOrNASRefused(t *testing.T) {
	s, g := newServer(t)
	b := base(nasA, "02-00-00-00-00-01")
	state, id := start(t, s, b)
	for _, other := range []appliance.Request{base(nasA, "02-00-00-00-00-02"), base(nasB, "02-00-00-00-00-01")} {
		rep := s.Handle(context.Background(), Request{Base: other, EAP: ttlsResponse(id, 0, 0, nil), State: state})
		wantRefused(t, g, rep, "another NAS or station")
	}
	// The rightful peer carries on: a NAK that asks for TTLS gets the
	// Start again.
	nak := Packet{Code: CodeResponse, Identifier: id, Type: TypeNAK, Data: []byte{TypeTTLS}}.Encode()
	if rep := s.Handle(context.Background(), Request{Base: b, EAP: nak, State: state}); rep.Outcome != Challenge {
		t.Fatalf("the rightful station got %v, want a Challenge", rep.Outcome)
	}
}

// TestNAKToAnUnallowedMethodRefused: a peer that asks for a method its
// client does not allow (here PEAP, where only TTLS is) is refused with
// method_not_allowed; one it allows is started instead.
func TestNAKToAnUnallowedMethodRefused(t *testing.T) {
	s, g := newServer(t)
	b := base(nasA, "02-00-00-00-00-01")
	rep := s.Handle(context.Background(), Request{Base: b, EAP: identity(7, "anonymous"), Methods: []string{"ttls"}})
	p, err := Parse(rep.EAP)
	if rep.Outcome != Challenge || err != nil || p.Type != TypeTTLS {
		t.Fatalf("identity answered with %v %x, want the EAP-TTLS Start", rep.Outcome, rep.EAP)
	}
	nak := Packet{Code: CodeResponse, Identifier: p.Identifier, Type: TypeNAK, Data: []byte{TypePEAP, TypeTLS}}.Encode()
	rep = s.Handle(context.Background(), Request{Base: b, EAP: nak, State: rep.State, Methods: []string{"ttls"}})
	wantRefusedFor(t, g, rep, appliance.ReasonMethodNotAllowed, "this client may use")

	// Allowed and set up: the NAK gets PEAP's Start, version 0.
	state, id := start(t, s, b)
	nak = Packet{Code: CodeResponse, Identifier: id, Type: TypeNAK, Data: []byte{TypeTLS, TypePEAP}}.Encode() // no trust anchors: no EAP-TLS
	rep = s.Handle(context.Background(), Request{Base: b, EAP: nak, State: state})
	if p, err := Parse(rep.EAP); rep.Outcome != Challenge || err != nil || p.Type != TypePEAP || !bytes.Equal(p.Data, []byte{flagStart}) {
		t.Fatalf("a NAK for PEAP got %v %x, want the PEAP Start", rep.Outcome, rep.EAP)
	}
}

// TestNoMethodForTheClientRefused: a client that allows only EAP-TLS, on
// a server without trust anchors, gets method_not_allowed at once.
func TestNoMethodForTheClientRefused(t *testing.T) {
	s, g := newServer(t)
	rep := s.Handle(context.Background(), Request{Base: base(nasA, "02-00-00-00-00-01"), EAP: identity(7, "alice"), Methods: []string{"tls"}})
	wantRefusedFor(t, g, rep, appliance.ReasonMethodNotAllowed, "EAP-TLS needs trust anchors")
	if s.Len() != 0 {
		t.Fatalf("%d sessions, want 0", s.Len())
	}
}

func TestExpiredSessionRefused(t *testing.T) {
	s, g := newServer(t)
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	b := base(nasA, "02-00-00-00-00-01")
	state, id := start(t, s, b)
	now = now.Add(61 * time.Second)
	rep := s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, 0, 0, nil), State: state})
	wantRefused(t, g, rep, "took longer than 1m0s")
	if s.Len() != 0 {
		t.Fatalf("%d sessions, want the expired one gone", s.Len())
	}
}

// TestSessionCap: a flood of half-open handshakes from many stations, each
// with a TLS goroutine waiting for its peer, keeps the table at its cap and
// frees the goroutines of the sessions it evicts.
func TestSessionCap(t *testing.T) {
	s, _ := newServer(t)
	s.MaxSessions = 50
	_, roots := testTLS(t)
	before := runtime.NumGoroutine()
	for i := range 500 {
		b := base(nasA, "02-00-00-00-"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		state, id := start(t, s, b)
		p := newPeer(t, &tls.Config{RootCAs: roots, ServerName: serverName(t), MinVersion: tls.VersionTLS12})
		hello := p.first()
		rep := s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, flagLength, len(hello), hello), State: state})
		if rep.Outcome != Challenge {
			t.Fatalf("ClientHello %d: outcome %v", i, rep.Outcome)
		}
		p.close()
		if n := s.Len(); n > s.MaxSessions {
			t.Fatalf("%d sessions after %d handshakes, above the cap of %d", n, i+1, s.MaxSessions)
		}
	}
	// Each live session holds one goroutine; the evicted ones end.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+s.MaxSessions+5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines (%d before) with %d sessions: evicted handshakes were not freed", runtime.NumGoroutine(), before, s.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func serverName(t *testing.T) string {
	cfg, _ := testTLS(t)
	pair, err := cfg.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject.CommonName
}

// peer is a TTLS peer for the tests: a crypto/tls client over the same
// in-memory conn the server uses.
type peer struct {
	t    *testing.T
	pc   *tlspipe.Conn
	c    *tls.Conn
	done chan error
}

func newPeer(t *testing.T, cfg *tls.Config) *peer {
	p := &peer{t: t, pc: tlspipe.New(maxMessage, true), done: make(chan error, 1)} // a client speaks first
	p.c = tls.Client(p.pc, cfg)
	return p
}

// first starts the handshake and returns the ClientHello.
func (p *peer) first() []byte {
	go func() { p.done <- p.c.Handshake() }()
	select {
	case <-p.pc.Idle():
	case err := <-p.done:
		p.t.Fatalf("client handshake: %v", err)
	}
	return p.pc.TakeOut()
}

// step feeds the server's TLS data; with handshakeDone, the handshake is
// complete and the client has sent avps.
func (p *peer) step(in []byte, avps []byte) (out []byte, handshakeDone bool) {
	p.pc.In() <- in
	select {
	case <-p.pc.Idle():
		return p.pc.TakeOut(), false
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("client handshake: %v", err)
		}
	}
	if _, err := p.c.Write(avps); err != nil {
		p.t.Fatal(err)
	}
	return p.pc.TakeOut(), true
}

func (p *peer) close() { p.pc.Close() }

// converse runs a whole EAP-TTLS/PAP conversation, fragmenting what the
// peer sends at peerFrag bytes, with the NAS's Framed-MTU mtu.
func converse(t *testing.T, s *Server, version uint16, user, password string, peerFrag, mtu int) (Reply, *peer) {
	_, roots := testTLS(t)
	b := base(nasA, "02-00-00-00-00-09")
	state, id := start(t, s, b)
	p := newPeer(t, &tls.Config{RootCAs: roots, ServerName: serverName(t), MinVersion: version, MaxVersion: version})
	t.Cleanup(p.close)
	avps := appendAVP(appendAVP(nil, avpUserName, []byte(user)), avpUserPassword, append([]byte(password), 0, 0, 0))
	out := p.first()
	send := func(msg []byte) Reply {
		for off := 0; ; {
			n := min(len(msg)-off, peerFrag)
			var flags byte
			if off == 0 {
				flags = flagLength
			}
			if off+n < len(msg) {
				flags |= flagMore
			}
			rep := s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, flags, len(msg), msg[off:off+n]), State: state, FramedMTU: mtu})
			off += n
			if flags&flagMore == 0 {
				return rep
			}
			pk, err := Parse(rep.EAP)
			if rep.Outcome != Challenge || err != nil || !bytes.Equal(pk.Data, []byte{0}) {
				t.Fatalf("fragment answered with %v %x, want an ACK", rep.Outcome, rep.EAP)
			}
			id = pk.Identifier
		}
	}
	for round := 0; round < 50; round++ {
		rep := send(out)
		if rep.Outcome != Challenge {
			return rep, p
		}
		// Collect the server's fragments, acknowledging each.
		var in []byte
		for {
			pk, err := Parse(rep.EAP)
			if err != nil || pk.Type != TypeTTLS {
				t.Fatalf("server sent %x (%v)", rep.EAP, err)
			}
			if len(rep.EAP) > mtu && mtu > 0 {
				t.Fatalf("an EAP packet of %d bytes above the Framed-MTU of %d", len(rep.EAP), mtu)
			}
			f, err := parseFrame(pk.Data)
			if err != nil {
				t.Fatal(err)
			}
			id = pk.Identifier
			in = append(in, f.data...)
			if f.flags&flagMore == 0 {
				break
			}
			rep = s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, 0, 0, nil), State: state, FramedMTU: mtu})
			if rep.Outcome != Challenge {
				t.Fatalf("an ACK got %v", rep.Outcome)
			}
		}
		out, _ = p.step(in, avps)
	}
	t.Fatal("no end after 50 rounds")
	return Reply{}, nil
}

func TestTTLSPAPConversation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version uint16
		label   string
		context []byte
		note    string
	}{
		{"TLS 1.2", tls.VersionTLS12, "ttls keying material", nil, "eap_ttls_tls12"},
		{"TLS 1.3", tls.VersionTLS13, "EXPORTER_EAP_TLS_Key_Material", []byte{0x15}, "eap_ttls_tls13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, g := newServer(t)
			rep, p := converse(t, s, tc.version, "alice", "secret", 60, 200)
			if rep.Outcome != Accept || len(rep.MSK) != 64 {
				t.Fatalf("outcome %v with a %d-byte MSK, want an Accept with 64; gate got %+v", rep.Outcome, len(rep.MSK), g.last(t))
			}
			if pk, err := Parse(rep.EAP); err != nil || pk.Code != CodeSuccess {
				t.Fatalf("accept carries %x, want an EAP-Success", rep.EAP)
			}
			st := p.c.ConnectionState()
			want, err := st.ExportKeyingMaterial(tc.label, tc.context, 128)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rep.MSK, want[:64]) {
				t.Fatal("the server's MSK differs from the peer's")
			}
			req := g.last(t)
			if req.Method != appliance.MethodTTLSPAP || req.User != "alice" || string(req.Password) != "secret" ||
				!slices.Contains(req.Notes, tc.note) || req.OuterIdentity != "anonymous" || !strings.HasPrefix(req.TLS, "TLS 1.") {
				t.Fatalf("the gate got %+v", req)
			}
			if s.Len() != 0 {
				t.Fatalf("%d sessions after the Accept, want 0", s.Len())
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		s, _ := newServer(t)
		rep, _ := converse(t, s, tls.VersionTLS13, "alice", "wrong", 1000, 0)
		if rep.Outcome != Reject || rep.MSK != nil || rep.Decision.Reason != appliance.ReasonBadPassword {
			t.Fatalf("outcome %v reason %q, want a Reject for bad_password without keys", rep.Outcome, rep.Decision.Reason)
		}
	})
}

func TestInnerAVPs(t *testing.T) {
	in, err := parseAVPs(appendAVP(appendAVP(nil, avpUserName, []byte("bob")), avpUserPassword, []byte("pw\x00\x00\x00\x00")))
	if err != nil || in.user != "bob" || string(in.password) != "pw" {
		t.Fatalf("%+v %v, want bob and pw without its NUL padding", in, err)
	}
	if _, err := parseAVPs(appendAVP(appendAVP(nil, avpUserName, []byte("bob")), 79, []byte("x"))); err == nil {
		t.Error("an unsupported mandatory AVP (EAP-Message, an inner EAP method) was accepted")
	}
	bad := appendAVP(nil, avpUserName, []byte("bob"))
	binary.BigEndian.PutUint32(bad[4:8], avpFlagMandator<<24|200)
	if _, err := parseAVPs(bad); err == nil {
		t.Error("an AVP longer than the data was accepted")
	}
}

func TestEnsureCertificate(t *testing.T) {
	dir := t.TempDir()
	cp, kp, renewed, err := EnsureCertificate(dir)
	if err != nil || renewed || cp != filepath.Join(dir, CertFile) {
		t.Fatalf("%s %v %v", cp, renewed, err)
	}
	first, _ := os.ReadFile(cp)
	if _, _, renewed, err = EnsureCertificate(dir); err != nil || renewed {
		t.Fatalf("second start: renewed %v, %v", renewed, err)
	}
	if again, _ := os.ReadFile(cp); !bytes.Equal(first, again) {
		t.Fatal("the certificate changed on the second start")
	}
	if err := os.WriteFile(kp, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, renewed, err = EnsureCertificate(dir); err != nil || !renewed {
		t.Fatalf("damaged key: renewed %v, %v", renewed, err)
	}
}

// TestAbandonedHandshakeFreed: a peer that stops half-way through the
// handshake leaves nothing behind once its session has expired, even when
// no other conversation starts.
func TestAbandonedHandshakeFreed(t *testing.T) {
	s, _ := newServer(t)
	s.TTL = 200 * time.Millisecond
	_, roots := testTLS(t)
	before := runtime.NumGoroutine()
	for i := range 20 {
		b := base(nasA, "02-00-00-00-01-"+string(rune('a'+i)))
		state, id := start(t, s, b)
		p := newPeer(t, &tls.Config{RootCAs: roots, ServerName: serverName(t), MinVersion: tls.VersionTLS12})
		hello := p.first()
		if rep := s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, flagLength, len(hello), hello), State: state}); rep.Outcome != Challenge {
			t.Fatalf("ClientHello: outcome %v", rep.Outcome)
		}
		p.close()
	}
	if n := s.Len(); n != 20 {
		t.Fatalf("%d sessions, want 20", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Len() != 0 || runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions and %d goroutines (%d before) after expiry: abandoned handshakes were not freed", s.Len(), runtime.NumGoroutine(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOldTLSRefused: a peer that offers only TLS 1.0 or 1.1 is refused,
// and the gate audits why.
func TestOldTLSRefused(t *testing.T) {
	s, g := newServer(t)
	_, roots := testTLS(t)
	b := base(nasA, "02-00-00-00-00-01")
	state, id := start(t, s, b)
	p := newPeer(t, &tls.Config{RootCAs: roots, ServerName: serverName(t), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	defer p.close()
	hello := p.first()
	rep := s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, flagLength, len(hello), hello), State: state})
	// First the TLS alert, so the peer learns why (RFC 5216 §2.1.3)...
	pk, err := Parse(rep.EAP)
	if rep.Outcome != Challenge || err != nil || pk.Type != TypeTTLS {
		t.Fatalf("got %v %x, want a Challenge with the TLS alert", rep.Outcome, rep.EAP)
	}
	f, err := parseFrame(pk.Data)
	if err != nil || len(f.data) < 7 || f.data[0] != 21 || len(g.reqs) != 0 {
		t.Fatalf("got TLS data %x (%v), want an alert record and no decision yet", f.data, err)
	}
	// ...then, at the peer's acknowledgement, EAP-Failure.
	rep = s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(pk.Identifier, 0, 0, nil), State: state})
	wantRefused(t, g, rep, "unsupported versions")
	if s.Len() != 0 {
		t.Fatalf("%d sessions, want 0", s.Len())
	}
}

// TestTLSRecordFloodRefused: 60 KiB of TLS records that are no handshake
// end the conversation and its goroutine.
func TestTLSRecordFloodRefused(t *testing.T) {
	s, g := newServer(t)
	b := base(nasA, "02-00-00-00-00-01")
	before := runtime.NumGoroutine()
	state, id := start(t, s, b)
	var flood []byte
	for len(flood) < 60<<10 {
		flood = append(flood, 0x14, 3, 3, 0, 1, 1) // ChangeCipherSpec, again and again
	}
	for off := 0; off < len(flood); off += 1000 {
		end := min(off+1000, len(flood))
		flags := byte(0)
		if off == 0 {
			flags = flagLength
		}
		if end < len(flood) {
			flags |= flagMore
		}
		rep := s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, flags, len(flood), flood[off:end]), State: state})
		if end == len(flood) {
			if rep.Outcome == Challenge {
				// The alert first; the peer's acknowledgement ends it.
				pk, _ := Parse(rep.EAP)
				rep = s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(pk.Identifier, 0, 0, nil), State: state})
			}
			wantRefused(t, g, rep, "TLS")
			break
		}
		pk, err := Parse(rep.EAP)
		if rep.Outcome != Challenge || err != nil {
			t.Fatalf("fragment at %d: %v", off, rep.Outcome)
		}
		id = pk.Identifier
	}
	if s.Len() != 0 {
		t.Fatalf("%d sessions, want 0", s.Len())
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before: the TLS goroutine outlived its conversation", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEAPStart: a NAS that opens with an empty EAP-Message gets an
// EAP-Request/Identity; the identity then gets the EAP-TTLS Start, and a
// second identity later is refused.
func TestEAPStart(t *testing.T) {
	s, g := newServer(t)
	b := base(nasA, "02-00-00-00-00-01")
	rep := s.Handle(context.Background(), Request{Base: b})
	p, err := Parse(rep.EAP)
	if rep.Outcome != Challenge || err != nil || p.Code != CodeRequest || p.Type != TypeIdentity || len(rep.State) == 0 {
		t.Fatalf("EAP-Start answered with %v %x, want a Challenge with an EAP-Request/Identity", rep.Outcome, rep.EAP)
	}
	state := rep.State
	rep = s.Handle(context.Background(), Request{Base: b, EAP: identity(p.Identifier, "anonymous"), State: state})
	p, err = Parse(rep.EAP)
	if rep.Outcome != Challenge || err != nil || p.Type != TypeTTLS || !bytes.Equal(p.Data, []byte{flagStart}) {
		t.Fatalf("identity answered with %v %x, want the EAP-TTLS Start", rep.Outcome, rep.EAP)
	}
	rep = s.Handle(context.Background(), Request{Base: b, EAP: identity(p.Identifier, "someone-else"), State: state})
	wantRefused(t, g, rep, "an identity in the middle")
}

// TestFloodOfHalfOpenHandshakes: 10,000 conversations from as many
// stations that never finish (every tenth one half-way through its TLS
// handshake) keep the table at its cap and the goroutines bounded, and a
// real login between them is still served.
func TestFloodOfHalfOpenHandshakes(t *testing.T) {
	s, _ := newServer(t)
	s.MaxSessions = 500
	_, roots := testTLS(t)
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName(t), MinVersion: tls.VersionTLS12}
	hello := newPeer(t, cfg).first() // one ClientHello, replayed: each starts its own handshake
	before := runtime.NumGoroutine()
	for i := range 10000 {
		b := base(nasB, fmt.Sprintf("flood-%05d", i))
		state, id := start(t, s, b)
		if i%10 == 0 {
			if rep := s.Handle(context.Background(), Request{Base: b, EAP: ttlsResponse(id, flagLength, len(hello), hello), State: state}); rep.Outcome != Challenge {
				t.Fatalf("ClientHello %d: outcome %v", i, rep.Outcome)
			}
		}
		if n := s.Len(); n > s.MaxSessions {
			t.Fatalf("%d sessions after %d, above the cap of %d", n, i+1, s.MaxSessions)
		}
		if i%2500 == 1234 {
			if rep, _ := converse(t, s, tls.VersionTLS13, "alice", "secret", 1000, 0); rep.Outcome != Accept {
				t.Fatalf("a real login amid the flood got %v, want Accept", rep.Outcome)
			}
		}
	}
	// At most one goroutine per live session (only every tenth has one);
	// the evicted ones end.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+s.MaxSessions/10+10 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before, with %d sessions", runtime.NumGoroutine(), before, s.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
