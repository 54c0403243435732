package eapclient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/internal/eapclient"
	"github.com/clinicgate/clinicgate/internal/selfcert"
	cgradius "github.com/clinicgate/clinicgate/radius"
)

// The client is tested here against clinicgate's own RADIUS door and EAP
// server in this process, with a gate that accepts one password; the e2e
// tests run it against the daemon and FreeRADIUS.

const (
	secret   = "eapclient-test-secret"
	password = "correct horse battery"
)

// gate accepts alice with password and records the requests.
type gate struct {
	mu   sync.Mutex
	reqs []appliance.Request
}

func (g *gate) Decide(_ context.Context, req appliance.Request) (appliance.Decision, error) {
	g.mu.Lock()
	g.reqs = append(g.reqs, req)
	g.mu.Unlock()
	if req.Invalid == "" && req.Method == appliance.MethodTTLSPAP && req.User == "alice" && string(req.Password) == password {
		return appliance.Decision{Outcome: appliance.Accept, Reason: appliance.ReasonOK, User: "alice",
			Attributes: appliance.Attributes{VLAN: 20}}, nil
	}
	return appliance.Decision{Outcome: appliance.Reject, Reason: appliance.ReasonBadPassword, Message: appliance.MsgDenied}, nil
}

type clients struct{}

func (clients) Lookup(context.Context, netip.Addr) (appliance.Client, bool, error) {
	return appliance.Client{Name: "test", Door: "radius", Prefix: netip.MustParsePrefix("127.0.0.1/32"),
		Secret: []byte(secret), Policy: policy.Default()}, true, nil
}

type server struct {
	addr, certPath, fp string
	gate               *gate
}

func start(t *testing.T) server {
	t.Helper()
	cp, kp, _, err := eap.EnsureCertificate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := eap.TLSConfig(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := selfcert.Fingerprint(cp)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{}
	s := &cgradius.Server{Gate: g, Clients: clients{}, EAP: &eap.Server{Gate: g, TLS: cfg}}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(conn)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return server{addr: conn.LocalAddr().String(), certPath: cp, fp: fp, gate: g}
}

func pool(t *testing.T, certPath string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatal("no certificate in " + certPath)
	}
	return p
}

func TestTTLSLoginAgainstClinicgate(t *testing.T) {
	s := start(t)
	whole := map[uint16]int{} // rounds without fragments, by version
	for _, tc := range []struct {
		name    string
		version uint16
		frag    int
		mtu     int
		pin     bool
	}{
		{"tls1.2", tls.VersionTLS12, 0, 0, false},
		{"tls1.3", tls.VersionTLS13, 0, 0, true},
		{"either", 0, 0, 0, true},
		// Small fragments both ways: the client's own, and the server's
		// through Framed-MTU; every fragment is acknowledged.
		{"tls1.2 fragments", tls.VersionTLS12, 100, 300, false},
		{"tls1.3 fragments", tls.VersionTLS13, 100, 300, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := eapclient.Config{Addr: s.addr, Secret: []byte(secret), User: "alice", Password: []byte(password),
				TLSVersion: tc.version, FragmentSize: tc.frag, FramedMTU: tc.mtu}
			if tc.pin {
				c.PinSHA256 = s.fp
			} else {
				c.RootCAs = pool(t, s.certPath)
			}
			r, err := eapclient.Login(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Accepted || r.Code != radius.CodeAccessAccept {
				t.Fatalf("got %v, want Access-Accept", r.Code)
			}
			want := tc.version
			if want == 0 {
				want = tls.VersionTLS13
			}
			if r.TLSVersion != want {
				t.Errorf("got TLS version %x, want %x", r.TLSVersion, want)
			}
			if !r.KeysMatch || len(r.RecvKey) != 32 || len(r.SendKey) != 32 {
				t.Errorf("the Accept's MPPE keys (%x, %x) are not the tunnel's MSK %x", r.RecvKey, r.SendKey, r.MSK)
			}
			if got := rfc2865.UserName_GetString(r.Reply); got != "alice" {
				t.Errorf("got User-Name %q, want alice", got)
			}
			if tc.frag == 0 {
				whole[r.TLSVersion] = r.Rounds
			} else if r.Rounds <= whole[r.TLSVersion] {
				t.Errorf("took %d rounds with 100-byte fragments, %d without; want more", r.Rounds, whole[r.TLSVersion])
			}
		})
	}
	// The outer identity stays outside; the gate saw the inner one.
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	if n := len(s.gate.reqs); n != 5 || s.gate.reqs[0].User != "alice" || s.gate.reqs[0].OuterIdentity != "anonymous" {
		t.Fatalf("the gate was asked %d times: %+v", n, s.gate.reqs)
	}
}

func TestTTLSWrongPasswordIsAReject(t *testing.T) {
	s := start(t)
	r, err := eapclient.Login(t.Context(), eapclient.Config{Addr: s.addr, Secret: []byte(secret), User: "alice",
		Password: []byte("wrong"), PinSHA256: s.fp})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted || r.Code != radius.CodeAccessReject || r.RecvKey != nil || r.TLSVersion == 0 {
		t.Fatalf("got %v accepted %v keys %x version %x, want a Reject after a tunnel", r.Code, r.Accepted, r.RecvKey, r.TLSVersion)
	}
}

// TestPasswordNotSentToAnotherServer: a server whose certificate is not
// the pinned one, or not from the CA given, never gets the password.
func TestPasswordNotSentToAnotherServer(t *testing.T) {
	s := start(t)
	other := start(t)
	for _, c := range []eapclient.Config{
		{PinSHA256: other.fp},
		{RootCAs: pool(t, other.certPath)},
		{RootCAs: pool(t, s.certPath), ServerName: "not-this-host.example"},
	} {
		c.Addr, c.Secret, c.User, c.Password = s.addr, []byte(secret), "alice", []byte(password)
		r, err := eapclient.Login(t.Context(), c)
		if !errors.Is(err, eapclient.ErrServerCert) || r.Accepted {
			t.Fatalf("got %v accepted %v, want ErrServerCert", err, r.Accepted)
		}
	}
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	for _, req := range s.gate.reqs {
		if len(req.Password) > 0 || req.Invalid == "" {
			t.Fatalf("the server got a password or an inner login: %+v", req)
		}
	}
	if _, err := eapclient.Login(t.Context(), eapclient.Config{Addr: s.addr, Secret: []byte(secret), User: "alice", Password: []byte(password)}); err == nil {
		t.Fatal("a login without a CA pool or a pin was attempted")
	}
}

// A server that does not share the secret cannot answer: its replies fail
// the Response Authenticator and are ignored until the client gives up.
func TestWrongSecretGetsNoLogin(t *testing.T) {
	s := start(t)
	_, err := eapclient.Login(t.Context(), eapclient.Config{Addr: s.addr, Secret: []byte("not the secret"), User: "alice",
		Password: []byte(password), PinSHA256: s.fp, Timeout: 200e6, Retries: 1})
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("got %v, want no answer", err)
	}
}
