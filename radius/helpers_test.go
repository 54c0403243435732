package radius

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/internal/msgauth"
)

// The test helpers below compute what RFC 2865 and RFC 3579 ask for from
// the RFC text, never with the code under test (the handler's checks and
// signing), so a mistake there cannot hide itself. The one HMAC they take
// from internal/msgauth (msgauth.Sum) is checked there against known
// answers computed outside the package.

const (
	testSecret = "s3cret-shared-with-the-nas"
	typeMA     = 80 // Message-Authenticator, RFC 3579 §3.2
)

// nasAddr is where the test NAS sends from; it is inside the fake client's
// prefix.
var nasAddr = &net.UDPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 40000}

// ---- fakes

// fakeDecider records the requests it is asked and answers with decision
// and err. With release set it blocks until release is closed; with
// entered set it reports each call there first (without blocking).
type fakeDecider struct {
	mu       sync.Mutex
	reqs     []appliance.Request
	decision appliance.Decision
	err      error
	entered  chan struct{}
	release  chan struct{}
}

func (f *fakeDecider) Decide(ctx context.Context, req appliance.Request) (appliance.Decision, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	d, err, entered, release := f.decision, f.err, f.entered, f.release
	f.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return appliance.Decision{Outcome: appliance.Reject, Reason: appliance.ReasonInternal}, ctx.Err()
		}
	}
	return d, err
}

func (f *fakeDecider) calls() []appliance.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// fakeClients finds clients by prefix.
type fakeClients struct {
	clients []appliance.Client
	err     error
}

func (f *fakeClients) Lookup(_ context.Context, addr netip.Addr) (appliance.Client, bool, error) {
	if f.err != nil {
		return appliance.Client{}, false, f.err
	}
	for _, c := range f.clients {
		if c.Prefix.Contains(addr.Unmap()) {
			return c, true, nil
		}
	}
	return appliance.Client{}, false, nil
}

// fakeSink records accounting, or fails with err.
type fakeSink struct {
	mu       sync.Mutex
	sessions []appliance.AcctSession
	stopAll  []string
	err      error
}

func (f *fakeSink) UpsertAcct(_ context.Context, a appliance.AcctSession) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.sessions = append(f.sessions, a)
	return nil
}

func (f *fakeSink) StopAllAcct(_ context.Context, client string, _ time.Time, cause string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.stopAll = append(f.stopAll, client+"/"+cause)
	return nil
}

func (f *fakeSink) recorded() []appliance.AcctSession {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessions)
}

// fixture is a Server over fakes, with a client "office-wifi" for
// 192.0.2.0/24 using the default policy.
type fixture struct {
	s       *Server
	gate    *fakeDecider
	clients *fakeClients
	acct    *fakeSink
	metrics *appliance.Metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		gate: &fakeDecider{decision: appliance.Decision{
			Outcome: appliance.Reject, Reason: appliance.ReasonBadPassword, Message: appliance.MsgDenied,
		}},
		clients: &fakeClients{clients: []appliance.Client{testClient("office-wifi", "192.0.2.0/24")}},
		acct:    &fakeSink{},
		metrics: appliance.NewMetrics(prometheus.NewRegistry()),
	}
	f.s = &Server{Gate: f.gate, Clients: f.clients, Accounting: f.acct, Metrics: f.metrics}
	return f
}

func testClient(name, prefix string) appliance.Client {
	return appliance.Client{
		Name: name, Door: string(appliance.DoorRADIUS), Prefix: netip.MustParsePrefix(prefix),
		Secret: []byte(testSecret), Policy: policy.Default(),
	}
}

// relax turns off the Message-Authenticator requirement of every client.
func (f *fixture) relax() {
	for i := range f.clients.clients {
		f.clients.clients[i].Policy.RequireMessageAuthenticator = false
	}
}

func (f *fixture) auth(t *testing.T, b []byte) []byte {
	t.Helper()
	return f.s.process(t.Context(), kindAuth, b, nasAddr)
}

func (f *fixture) dropped(cause string) float64 {
	return counterValue(f.metrics.Dropped.WithLabelValues(door, cause))
}

// onlyCall returns the one request the gate was asked, or fails.
func (f *fixture) onlyCall(t *testing.T) appliance.Request {
	t.Helper()
	calls := f.gate.calls()
	if len(calls) != 1 {
		t.Fatalf("got %d calls to Decide, want 1", len(calls))
	}
	return calls[0]
}

// ---- building requests

// accessRequest returns an Access-Request from user with a PAP password
// hidden as RFC 2865 §5.2 says, without a Message-Authenticator.
func accessRequest(t testing.TB, user, password string) *radius.Packet {
	t.Helper()
	p := radius.New(radius.CodeAccessRequest, []byte(testSecret))
	if err := rfc2865.UserName_SetString(p, user); err != nil {
		t.Fatal(err)
	}
	p.Add(rfc2865.UserPassword_Type, hidePassword([]byte(password), []byte(testSecret), p.Authenticator[:]))
	return p
}

// hidePassword is RFC 2865 §5.2: the password padded with NULs to a
// multiple of 16, XORed with MD5(secret + previous block), the first
// previous block being the Request Authenticator.
func hidePassword(pw, secret, auth []byte) radius.Attribute {
	n := (len(pw) + 15) / 16 * 16
	if n == 0 {
		n = 16
	}
	out := make([]byte, n)
	copy(out, pw)
	prev := auth
	for i := 0; i < n; i += 16 {
		sum := md5.Sum(append(slices.Clone(secret), prev...))
		for j := range 16 {
			out[i+j] ^= sum[j]
		}
		prev = out[i : i+16]
	}
	return out
}

// revealPassword undoes hidePassword (trailing NULs removed).
func revealPassword(hidden, secret, auth []byte) []byte {
	out := make([]byte, len(hidden))
	prev := auth
	for i := 0; i+16 <= len(hidden); i += 16 {
		sum := md5.Sum(append(slices.Clone(secret), prev...))
		for j := range 16 {
			out[i+j] = hidden[i+j] ^ sum[j]
		}
		prev = hidden[i : i+16]
	}
	return bytes.TrimRight(out, "\x00")
}

// encode marshals p as a NAS sends it: the Request Authenticator as is.
func encode(t testing.TB, p *radius.Packet) []byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signed encodes p and appends a Message-Authenticator made with secret.
func signed(t testing.TB, p *radius.Packet, secret string) []byte {
	t.Helper()
	return withMA(encode(t, p), secret, 16)
}

// withMA appends a Message-Authenticator attribute with an n-byte value to
// the encoded request b and fills it with HMAC-MD5(secret, packet with the
// value zeroed), truncated or zero-extended to n bytes (RFC 3579 §3.2;
// n other than 16 makes a malformed one). Existing Message-Authenticators
// are zeroed for the computation and given the same value, the form a
// lenient implementation would most likely accept.
func withMA(b []byte, secret string, n int) []byte {
	out := append(slices.Clone(b), typeMA, byte(2+n))
	out = append(out, make([]byte, n)...)
	binary.BigEndian.PutUint16(out[2:4], uint16(len(out)))
	var offs []int
	for i := 20; i+2 <= len(out); i += int(out[i+1]) {
		if out[i+1] < 2 || i+int(out[i+1]) > len(out) {
			break
		}
		if out[i] == typeMA {
			offs = append(offs, i+2)
			clear(out[i+2 : i+int(out[i+1])])
		}
	}
	sum := msgauth.Sum([]byte(secret), out)
	for _, off := range offs {
		end := off + int(out[off-1]) - 2
		copy(out[off:end], sum)
	}
	return out
}

// rawPacket builds a packet by hand (for malformed ones): a header with a
// Length covering attrs, and a random authenticator.
func rawPacket(code radius.Code, id byte, attrs ...[]byte) []byte {
	b := make([]byte, 20)
	b[0], b[1] = byte(code), id
	rand.Read(b[4:20])
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	return b
}

// attr encodes one attribute.
func attr(typ byte, value []byte) []byte {
	return append([]byte{typ, byte(2 + len(value))}, value...)
}

// acctRequest returns an encoded Accounting-Request with its Request
// Authenticator computed as RFC 2866 §3 says: MD5(Code + Identifier +
// Length + 16 zero octets + attributes + secret).
func acctRequest(t testing.TB, p *radius.Packet, secret string) []byte {
	t.Helper()
	p.Authenticator = [16]byte{}
	b := encode(t, p)
	h := md5.New()
	h.Write(b)
	h.Write([]byte(secret))
	copy(b[4:20], h.Sum(nil))
	return b
}

// ---- checking responses

// checkSigned verifies a reply to the request req as a NAS would: the
// identifier matches; the Response Authenticator is MD5(Code + Identifier +
// Length + Request Authenticator + attributes + secret) (RFC 2865 §3); the
// first attribute is a Message-Authenticator, the only one, equal to
// HMAC-MD5(secret, reply with the Request Authenticator in place and the
// Message-Authenticator zeroed) (RFC 3579 §3.2). It returns the parsed
// reply.
func checkSigned(t testing.TB, reply, req []byte, secret string) *radius.Packet {
	t.Helper()
	p := checkResponseAuth(t, reply, req, secret)
	if p == nil {
		return nil
	}
	switch p.Code {
	case radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge:
	default:
		t.Errorf("got a reply of code %v, want Access-Accept, -Reject or -Challenge", p.Code)
	}
	if len(reply) < 38 || reply[20] != typeMA || reply[21] != 18 {
		t.Errorf("the reply's first attribute is not an 18-byte Message-Authenticator: % x", reply[20:min(len(reply), 22)])
		return p
	}
	if n := len(all(p, typeMA)); n != 1 {
		t.Errorf("got %d Message-Authenticators in the reply, want 1", n)
	}
	c := slices.Clone(reply)
	copy(c[4:20], req[4:20])
	clear(c[22:38])
	if got, want := reply[22:38], msgauth.Sum([]byte(secret), c); !bytes.Equal(got, want) {
		t.Errorf("got Message-Authenticator % x, want % x", got, want)
	}
	return p
}

// checkResponseAuth checks the identifier, Length and Response
// Authenticator of a reply (any code) and returns it parsed.
func checkResponseAuth(t testing.TB, reply, req []byte, secret string) *radius.Packet {
	t.Helper()
	if len(reply) < 20 {
		t.Errorf("got a reply of %d bytes, want at least 20", len(reply))
		return nil
	}
	if got := int(binary.BigEndian.Uint16(reply[2:4])); got != len(reply) {
		t.Errorf("got Length %d, want %d (the datagram's size)", got, len(reply))
	}
	if reply[1] != req[1] {
		t.Errorf("got identifier %d, want %d (the request's)", reply[1], req[1])
	}
	h := md5.New()
	h.Write(reply[:4])
	h.Write(req[4:20])
	h.Write(reply[20:])
	h.Write([]byte(secret))
	if got, want := reply[4:20], h.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("got Response Authenticator % x, want % x", got, want)
	}
	p, err := radius.Parse(reply, []byte(secret))
	if err != nil {
		t.Errorf("the reply does not parse: %v", err)
		return nil
	}
	return p
}

// mustReply fails unless reply is a signed reply of code want.
func mustReply(t testing.TB, reply, req []byte, want radius.Code) *radius.Packet {
	t.Helper()
	if reply == nil {
		t.Fatalf("got no reply, want %v", want)
	}
	p := checkSigned(t, reply, req, testSecret)
	if p == nil {
		t.FailNow()
	}
	if p.Code != want {
		t.Fatalf("got %v, want %v", p.Code, want)
	}
	return p
}

// all returns the values of every attribute of type typ, in order.
func all(p *radius.Packet, typ radius.Type) []string {
	var out []string
	for _, a := range p.Attributes {
		if a.Type == typ {
			out = append(out, string(a.Attribute))
		}
	}
	return out
}

// counterValue reads a counter, as prometheus/testutil.ToFloat64 does
// (testutil itself would add a module to go.mod for one function).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// testCollectorCount counts the series a collector exports.
func testCollectorCount(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}
