package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/internal/msgauth"
)

const testFingerprint = "D6:D3:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:C5:46"

func newService(t *testing.T) *Service {
	t.Helper()
	ctx := t.Context()
	st, err := store.Open(ctx, t.TempDir(), store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	alog, err := audit.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(alog.Close)
	h, err := passwd.NewHasher(passwd.Params{MemoryKiB: 64, Time: 1, Threads: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(st, alog, h, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoginTargetFromStatus(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	radiusAuth := Listener{Door: ListenRADIUSAuth, Network: "udp", Address: "[::]:1812"}
	ldapL := func(door ListenDoor, addr, fp string) Listener {
		return Listener{Door: door, Network: "tcp", Address: addr, CertSHA256: fp}
	}
	for _, c := range []struct {
		name      string
		listeners []Listener
		door      appliance.Door
		want      string // the target, or the start of the error
	}{
		{"radius wildcard", []Listener{radiusAuth}, appliance.DoorRADIUS, "RADIUS 127.0.0.1:1812"},
		{"radius bound", []Listener{{Door: ListenRADIUSAuth, Network: "udp", Address: "127.0.0.1:11812"}}, appliance.DoorRADIUS, "RADIUS 127.0.0.1:11812"},
		{"no radius", []Listener{ldapL(ListenLDAP, "[::]:389", testFingerprint)}, appliance.DoorRADIUS, "the daemon does not listen for RADIUS authentication"},
		{"starttls first", []Listener{radiusAuth, ldapL(ListenLDAPS, "127.0.0.1:10636", testFingerprint), ldapL(ListenLDAP, "127.0.0.1:10389", testFingerprint)}, appliance.DoorLDAP, "LDAP with StartTLS 127.0.0.1:10389"},
		{"v6 wildcard", []Listener{ldapL(ListenLDAP, "[::]:389", testFingerprint)}, appliance.DoorLDAP, "LDAP with StartTLS 127.0.0.1:389"},
		{"v4 wildcard", []Listener{ldapL(ListenLDAP, "0.0.0.0:389", testFingerprint)}, appliance.DoorLDAP, "LDAP with StartTLS 127.0.0.1:389"},
		{"ldaps only", []Listener{ldapL(ListenLDAPS, "[::]:636", testFingerprint)}, appliance.DoorLDAP, "LDAPS 127.0.0.1:636"},
		{"bound address", []Listener{ldapL(ListenLDAP, "192.168.1.5:389", testFingerprint)}, appliance.DoorLDAP, "LDAP with StartTLS 192.168.1.5:389"},
		{"no fingerprint", []Listener{ldapL(ListenLDAP, "127.0.0.1:10389", "")}, appliance.DoorLDAP, "the daemon did not report its LDAP certificate's fingerprint"},
		{"short fingerprint", []Listener{ldapL(ListenLDAP, "127.0.0.1:10389", "D6:D3")}, appliance.DoorLDAP, "the daemon did not report its LDAP certificate's fingerprint"},
		{"no ldap", []Listener{radiusAuth}, appliance.DoorLDAP, "the daemon does not listen for LDAP"},
	} {
		st := DaemonStatus{UpdatedAt: now.Add(-5 * time.Second), Listeners: c.listeners}
		tg, err := LoginTarget(st, true, c.door, now)
		got := tg.String()
		if err != nil {
			got = strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		if err == nil && c.door == appliance.DoorLDAP && tg.CertSHA256 != testFingerprint {
			t.Errorf("%s: fingerprint %q", c.name, tg.CertSHA256)
		}
	}
	fresh := DaemonStatus{UpdatedAt: now, Listeners: []Listener{radiusAuth}}
	if _, err := LoginTarget(fresh, false, appliance.DoorRADIUS, now); err == nil || !strings.Contains(err.Error(), "is it running?") {
		t.Errorf("never reported: %v", err)
	}
	stale := fresh
	stale.UpdatedAt = now.Add(-time.Minute)
	if _, err := LoginTarget(stale, true, appliance.DoorRADIUS, now); err == nil || !strings.Contains(err.Error(), "not answering") {
		t.Errorf("stale: %v", err)
	}
}

// TestOldStatusRowsAreReadLeniently: a daemon older than the console
// wrote its listeners as display text; the console still reads the rest
// of the report, and the test login says to restart the daemon.
func TestOldStatusRowsAreReadLeniently(t *testing.T) {
	old := `{"version":"v0.9","started_at":"2026-11-30T08:00:00Z","updated_at":"2026-11-30T08:59:58Z",` +
		`"listeners":["RADIUS authentication 0.0.0.0:1812/udp","LDAP certificate /x.pem (SHA-256 ` + testFingerprint + `)"],` +
		`"upstreams":[{"name":"clinic-ad","kind":"ldap","state":"up","since":"2026-11-30T08:00:00Z"}]}`
	st, ok := ParseStatus(old)
	if !ok || st.Version != "v0.9" || len(st.Upstreams) != 1 || len(st.Listeners) != 0 || !st.OldListeners {
		t.Fatalf("got %+v, %v: want the report without its text listeners", st, ok)
	}
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	if _, err := LoginTarget(st, true, appliance.DoorRADIUS, now); err == nil || !strings.Contains(err.Error(), "restart it") {
		t.Fatalf("test login against an old report: %v", err)
	}
	if _, ok := ParseStatus("not json"); ok {
		t.Fatal("a report that is not JSON was read as one")
	}

	s := newService(t)
	if err := s.Store.WithTx(t.Context(), func(tx *store.Tx) error { return tx.SetSetting(t.Context(), statusKey, old) }); err != nil {
		t.Fatal(err)
	}
	st, ok, err := s.Status(t.Context())
	if err != nil || !ok || st.Version != "v0.9" {
		t.Fatalf("Status of an old row: %+v %v %v", st, ok, err)
	}
	// And what this version writes reads back as it was.
	st = DaemonStatus{Version: "v1", UpdatedAt: now, Listeners: []Listener{{Door: ListenLDAPS, Network: "tcp", Address: "[::]:636", CertSHA256: testFingerprint}}}
	if err := s.ReportStatus(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Status(t.Context())
	if err != nil || !ok || got.OldListeners || len(got.Listeners) != 1 || got.Listeners[0] != st.Listeners[0] {
		t.Fatalf("round trip: %+v %v %v", got, ok, err)
	}
}

func selfSigned(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "impostor"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestPinnedCertificate: the password goes only to the certificate the
// daemon reported; anything else is refused in words.
func TestPinnedCertificate(t *testing.T) {
	der := selfSigned(t)
	right := CertFingerprint(der)
	if err := pinCertificate(right)([][]byte{der}, nil); err != nil {
		t.Fatalf("the right certificate was refused: %v", err)
	}
	if err := pinCertificate(strings.ToLower(right))([][]byte{der}, nil); err != nil {
		t.Fatalf("a lower-case fingerprint was refused: %v", err)
	}
	for want, words := range map[string]string{
		testFingerprint: "is not the appliance's (its SHA-256 is " + right + ", the daemon reported " + testFingerprint + "); something else answered, and the password was not sent",
		"":              "there is no LDAP certificate fingerprint to check the server against; the password was not sent",
		"D6:D3":         "there is no LDAP certificate fingerprint",
	} {
		err := pinCertificate(want)([][]byte{der}, nil)
		if err == nil || !strings.Contains(err.Error(), words) {
			t.Errorf("fingerprint %q: got %v, want %q", want, err, words)
		}
	}
	if err := pinCertificate(right)(nil, nil); err == nil || !strings.Contains(err.Error(), "showed no certificate") {
		t.Errorf("no certificate: %v", err)
	}
}

// TestLDAPLoopbackClientIsNotARADIUSSender: an LDAP client at 127.0.0.1
// has no shared secret, so a RADIUS test login must not go out as it.
func TestLDAPLoopbackClientIsNotARADIUSSender(t *testing.T) {
	clients := []Client{
		{Name: "ehr-local", Door: "ldap", Prefix: netip.MustParsePrefix("127.0.0.1/32")},
		{Name: "office-wifi", Door: "radius", Prefix: netip.MustParsePrefix("192.168.1.2/32")},
	}
	if v := loopbackVia(clients, appliance.DoorRADIUS, TestClientName, loopback); v != nil {
		t.Fatalf("the RADIUS test would go out as %s", v.Name)
	}
	if v := loopbackVia(clients, appliance.DoorLDAP, TestLDAPClientName, loopback); v == nil || v.Name != "ehr-local" {
		t.Fatalf("the LDAP test would go out as %v, want ehr-local", v)
	}
	clients = append(clients, Client{Name: "lab", Prefix: netip.MustParsePrefix("127.0.0.0/8")}) // no door: RADIUS
	if v := loopbackVia(clients, appliance.DoorRADIUS, TestClientName, loopback); v == nil || v.Name != "lab" {
		t.Fatalf("the RADIUS test would go out as %v, want lab", v)
	}
	// As in the daemon, the most specific prefix wins, wherever it is listed.
	clients = append([]Client{{Name: "this-box", Prefix: netip.MustParsePrefix("127.0.0.1/32")}}, clients...)
	if v := loopbackVia(clients, appliance.DoorRADIUS, TestClientName, loopback); v == nil || v.Name != "this-box" {
		t.Fatalf("the RADIUS test would go out as %v, want this-box", v)
	}
}

// TestRADIUSTestLoginThroughATemporaryClient: with no loopback RADIUS
// client, the test login adds one with the chosen client's policy, sends
// a signed request the daemon decodes with that client's secret, reads
// the decision's story from the audit, and removes the client again.
func TestRADIUSTestLoginThroughATemporaryClient(t *testing.T) {
	ctx := t.Context()
	s := newService(t)
	pol := policy.Default()
	pol.MFA = policy.MFAOff
	if _, err := s.AddClient(ctx, NewClient{Name: "office-wifi", Address: "192.168.1.2", Policy: pol}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddClient(ctx, NewClient{Door: appliance.DoorLDAP, Name: "ehr-local", Address: "127.0.0.1", Policy: policy.Default()}); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		password string
		policy   policy.Policy
		signed   error
	}
	got := make(chan seen, 1)
	srv := &radius.PacketServer{
		SecretSource: secretFunc(func(ctx context.Context, _ net.Addr) ([]byte, error) {
			cs, err := s.Clients(ctx)
			if err != nil {
				return nil, err
			}
			if v := loopbackVia(cs, appliance.DoorRADIUS, "", loopback); v != nil {
				return v.Secret, nil
			}
			return nil, nil
		}),
		Handler: radius.HandlerFunc(func(w radius.ResponseWriter, r *radius.Request) {
			cs, _ := s.Clients(r.Context())
			via := loopbackVia(cs, appliance.DoorRADIUS, "", loopback)
			raw, _ := r.Packet.Encode()
			got <- seen{rfc2865.UserPassword_GetString(r.Packet), via.Policy, msgauth.Verify(raw, via.Secret)}
			_, _ = s.Audit.Append(r.Context(), audit.Entry{Kind: audit.KindDecision, Door: "radius", Client: via.Name, User: "dr.lee",
				Outcome: "reject", Reason: "bad_password", Detail: audit.DecisionDetail{Steps: []audit.Step{{Stage: "password", Result: "wrong password"}}}.Marshal()})
			w.Write(r.Response(radius.CodeAccessReject))
		}),
	}
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	if err := s.ReportStatus(ctx, DaemonStatus{UpdatedAt: time.Now(), Listeners: []Listener{{Door: ListenRADIUSAuth, Network: "udp", Address: pc.LocalAddr().String()}}}); err != nil {
		t.Fatal(err)
	}

	r, err := s.TestLogin(ctx, LoginTest{Client: "office-wifi", User: "dr.lee", Password: secrets.Secret("correct horse")})
	if err != nil {
		t.Fatal(err)
	}
	sv := <-got
	if sv.password != "correct horse" {
		t.Fatalf("the server decoded the password as %q: the request was sent with the wrong secret", sv.password)
	}
	if sv.signed != nil {
		t.Fatalf("the request's Message-Authenticator: %v", sv.signed)
	}
	if sv.policy.MFA != policy.MFAOff {
		t.Fatalf("the temporary client carries policy %+v, want office-wifi's", sv.policy)
	}
	if r.Outcome != "Access-Reject" || r.Accepted || !r.Temporary || r.Via != TestClientName || !strings.Contains(r.Note(), "temporary client console-test with office-wifi's policy") {
		t.Fatalf("result %+v (%s)", r, r.Note())
	}
	if r.Story == nil || r.Story.Reason != "bad_password" || len(r.Story.Steps) != 1 || r.Story.Steps[0].Result != "wrong password" {
		t.Fatalf("story %+v", r.Story)
	}
	cs, err := s.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == TestClientName {
			t.Fatalf("the temporary client was not removed: %+v", cs)
		}
	}
}

// TestLDAPTestLoginWithoutFingerprintSendsNothing: when the daemon
// reports no certificate fingerprint, the test says why, sends nothing
// and adds no temporary client.
func TestLDAPTestLoginWithoutFingerprintSendsNothing(t *testing.T) {
	ctx := t.Context()
	s := newService(t)
	if _, err := s.AddClient(ctx, NewClient{Door: appliance.DoorLDAP, Name: "ehr", Address: "192.168.1.20", Policy: policy.Default()}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	if err := s.ReportStatus(ctx, DaemonStatus{UpdatedAt: time.Now(), Listeners: []Listener{{Door: ListenLDAP, Network: "tcp", Address: ln.Addr().String()}}}); err != nil {
		t.Fatal(err)
	}
	seq, _, err := s.Store.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.TestLogin(ctx, LoginTest{Client: "ehr", User: "dr.lee", Password: secrets.Secret("secret,123456")})
	if err == nil || !strings.Contains(err.Error(), "did not report its LDAP certificate's fingerprint") || !strings.Contains(err.Error(), "does not send the password") {
		t.Fatalf("got %v, want a refusal in words", err)
	}
	select {
	case <-accepted:
		t.Fatal("the test connected to the LDAP door without a fingerprint to check")
	default:
	}
	if rows, err := s.AuditAfter(ctx, seq, 10); err != nil || len(rows) != 0 {
		t.Fatalf("a refused test changed something: %+v %v", rows, err)
	}
}

func TestUpstreamCheckLines(t *testing.T) {
	c := UpstreamCheck{Steps: []CheckStep{
		{What: "settings of radius upstream nps: {}", Result: "ok", OK: true},
		{What: "(this kind has no separate connection check)", OK: true},
		{What: "checking the password of alice", Result: "UNREACHABLE after 1s: no reply", Hint: "Check the address and port."},
	}, Warnings: []string{"replies are accepted without Message-Authenticator"}}
	want := "1. settings of radius upstream nps: {}\n   ok\n   warning: replies are accepted without Message-Authenticator\n" +
		"2. (this kind has no separate connection check)\n3. checking the password of alice\n   UNREACHABLE after 1s: no reply\n   Check the address and port."
	if got := strings.Join(c.Lines(), "\n"); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

type secretFunc func(context.Context, net.Addr) ([]byte, error)

func (s secretFunc) RADIUSSecret(ctx context.Context, a net.Addr) ([]byte, error) { return s(ctx, a) }

// TestTTLSTestLoginWithoutEAPCASendsNothing: an EAP-TTLS test sends the
// password only to a certificate that passes a device's check (the EAP CA
// and server name the daemon reported); without that report it says why,
// sends nothing and adds no temporary client.
func TestTTLSTestLoginWithoutEAPCASendsNothing(t *testing.T) {
	ctx := t.Context()
	s := newService(t)
	if _, err := s.AddClient(ctx, NewClient{Name: "office-wifi", Address: "192.168.1.2", Policy: policy.Default()}); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := s.ReportStatus(ctx, DaemonStatus{UpdatedAt: time.Now(), Listeners: []Listener{{Door: ListenRADIUSAuth, Network: "udp", Address: pc.LocalAddr().String()}}}); err != nil {
		t.Fatal(err)
	}
	seq, _, err := s.Store.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.TestLogin(ctx, LoginTest{Client: "office-wifi", User: "dr.lee", Password: secrets.Secret("correct horse"), Method: LoginTTLS})
	if err == nil || !strings.Contains(err.Error(), "did not report its EAP CA and server name") || !strings.Contains(err.Error(), "does not send the password") {
		t.Fatalf("got %v, want a refusal in words", err)
	}
	pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _, err := pc.ReadFrom(make([]byte, 4096)); err == nil {
		t.Fatalf("the test sent %d bytes to the RADIUS door without a CA to check", n)
	}
	if rows, err := s.AuditAfter(ctx, seq, 10); err != nil || len(rows) != 0 {
		t.Fatalf("a refused test changed something: %+v %v", rows, err)
	}
	for _, bad := range []LoginTest{{Method: "chap"}, {Method: LoginTTLS, TLSVersion: 0x0302}} {
		bad.Client, bad.User, bad.Password = "office-wifi", "dr.lee", secrets.Secret("x")
		if _, err := s.TestLogin(ctx, bad); err == nil {
			t.Errorf("%+v was sent", bad)
		}
	}
}
