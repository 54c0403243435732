package tui

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

	tea "github.com/charmbracelet/bubbletea"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// The real admin service is what the console drives in production.
var _ Admin = (*admin.Service)(nil)

const testFingerprint = "D6:D3:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:C5:46"

// ldapSample is sample() with an LDAP door: its listeners, settings, two
// bind accounts and an LDAP client.
func ldapSample() *fakeAdmin {
	f := sample()
	f.status.Listeners = append(f.status.Listeners,
		"LDAP (StartTLS) [::]:389/tcp", "LDAPS [::]:636/tcp",
		"LDAP certificate /var/lib/clinicgate/ldap-cert.pem (SHA-256 "+testFingerprint+")")
	f.settings = map[string]string{"ldap_base_dn": "dc=clinic,dc=local", "ldap_domain": "clinic.local", "ldap_netbios": "CLINIC"}
	f.binds = []store.BindAccount{
		{Name: "ehr-search", Networks: []netip.Prefix{netip.MustParsePrefix("192.168.1.20/32")}, CreatedAt: t0},
		{Name: "pacs-lookup", Networks: []netip.Prefix{netip.MustParsePrefix("192.168.1.30/32"), netip.MustParsePrefix("10.20.0.0/24")}, CreatedAt: t0.Add(-48 * time.Hour)},
	}
	p := policy.Default()
	p.MFARemember = 900
	f.clients = []store.Client{{Name: "ehr", Door: "ldap", Prefix: netip.MustParsePrefix("192.168.1.20/32"), Policy: p, Version: 1}}
	return f
}

func toLDAPTab(t *testing.T, tm interface{ Send(tea.Msg) }) {
	t.Helper()
	for range int(tabLDAP) {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
}

func TestLDAPScreen(t *testing.T) {
	tm := start(t, ldapSample(), 80, 24)
	waitFor(t, tm, "frontdesk2")
	toLDAPTab(t, tm)
	waitFor(t, tm, "pacs-lookup", "LDAPS")
	golden(t, "ldap", screen(t, tm))
}

func TestLDAPTabByMouse(t *testing.T) {
	tm := start(t, ldapSample(), 80, 24)
	waitFor(t, tm, "frontdesk2")
	// "clinicgate  Dashboard │ … │ Devices │ LDAP": LDAP is at 72-75.
	tm.Send(tea.MouseMsg{X: 73, Y: 0, Button: tea.MouseButtonLeft, Action: tea.MouseActionRelease})
	waitFor(t, tm, "pacs-lookup")
	// A click on the second bind account selects it: x then removes it.
	tm.Send(tea.MouseMsg{X: 3, Y: ldapFirstRow + 1, Button: tea.MouseButtonLeft, Action: tea.MouseActionRelease})
	tm.Type("x")
	waitFor(t, tm, "Remove the bind account pacs-lookup?")
}

func TestTabBarFitsEightyColumns(t *testing.T) {
	for _, v := range []string{"test", "v1.12.3-rc1+dirty", ""} {
		m := New(sample(), Options{Version: v})
		bar, starts := m.tabBar()
		if n := len([]rune(bar)); n > 80 {
			t.Errorf("version %q: the tab bar is %d columns: %q", v, n, bar)
		}
		for i, x := range starts {
			if got := string([]rune(bar)[x : x+len([]rune(tabNames[i]))]); got != tabNames[i] {
				t.Errorf("version %q: tab %d starts at %d, where the bar says %q", v, i, x, got)
			}
		}
	}
	wide := New(sample(), Options{Version: "test"})
	wide.width = 120
	if bar, _ := wide.tabBar(); !strings.HasPrefix(bar, "clinicgate test  ") {
		t.Errorf("at 120 columns the version should show: %q", bar)
	}
}

func TestBindAccountAddAndRemove(t *testing.T) {
	f := ldapSample()
	f.binds = nil
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	toLDAPTab(t, tm)
	waitFor(t, tm, "no bind accounts yet")
	tm.Type("a")
	waitFor(t, tm, "Add a bind account")
	tm.Type("ehr-search")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("192.168.1.300")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "is not an IP address")
	for range len("192.168.1.300") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("192.168.1.20")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "B1ndS3cretB1ndS3cretB1ndS3cret12", "shown once", "bind DN or user is ehr-search", `CLINIC\ehr-search`, "port 636 (LDAPS)")
	tm.Type("x") // closes the secret
	waitFor(t, tm, "192.168.1.20/32")
	tm.Type("x")
	waitFor(t, tm, "Remove the bind account ehr-search?")
	tm.Type("y")
	waitFor(t, tm, "bind account ehr-search removed")
	if out := screen(t, tm); strings.Contains(out, "B1ndS3cret") {
		t.Fatal("the secret stayed on screen")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.binds) != 0 {
		t.Fatalf("bind accounts left: %+v", f.binds)
	}
}

func TestLDAPSettingsForm(t *testing.T) {
	f := ldapSample()
	tm := start(t, f, 80, 30)
	waitFor(t, tm, "frontdesk2")
	toLDAPTab(t, tm)
	waitFor(t, tm, "pacs-lookup")
	tm.Type("e")
	waitFor(t, tm, "LDAP settings", "> base DN:")
	// base DN: a bad one is refused in words, and nothing is written.
	for range len("dc=clinic,dc=local") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("clinic")
	for range 8 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, `base DN: "clinic" is not a distinguished name like dc=clinic,dc=local`)
	tm.Send(tea.KeyMsg{Type: tea.KeyTab}) // to base DN (the form wraps)
	for range len("clinic") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("dc=clinic,dc=local")
	// mode: proxy without an upstream, then with one that is no LDAP one.
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	for range len("directory") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("proxy")
	for range 5 {
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "proxy mode needs the name of an LDAP upstream")
	f.mu.Lock()
	written := len(f.written)
	f.mu.Unlock()
	if written != 0 {
		t.Fatalf("a refused form wrote %d settings", written)
	}
	for range 3 { // back to upstream
		tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	}
	tm.Type("clinic-ad")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("0") // size limit: 5000
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "LDAP settings saved", "proxy: searches go to the upstream clinic-ad")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settings["ldap_mode"] != "proxy" || f.settings["ldap_proxy_upstream"] != "clinic-ad" || f.settings["ldap_size_limit"] != "5000" {
		t.Fatalf("settings %v", f.settings)
	}
	// Only what changed, and the upstream before the mode that uses it.
	if got := strings.Join(f.written, " "); got != "ldap_size_limit ldap_proxy_upstream ldap_mode" {
		t.Fatalf("written in the order %s", got)
	}
}

func TestAddLDAPClient(t *testing.T) {
	f := sample()
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "no clients yet")
	tm.Type("a")
	waitFor(t, tm, "> name:")
	for _, v := range []string{"ehr", "192.168.1.20", "smoke signals", ""} {
		tm.Type(v)
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "door: answer radius")
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	for range len("smoke signals") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("LDAP")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "An LDAP client has no shared secret", "add one on the LDAP tab", "port 636 (LDAPS) or 389 with StartTLS")
	tm.Type("x")
	waitFor(t, tm, "TLS required")
	out := screen(t, tm)
	if strings.Contains(out, "Gen3ratedS3cret") {
		t.Fatal("an LDAP client was shown a shared secret")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.clients) != 1 || f.clients[0].Door != "ldap" || len(f.clients[0].Secret) != 0 {
		t.Fatalf("clients %+v", f.clients)
	}
}

func TestEditLDAPClientPolicy(t *testing.T) {
	f := ldapSample()
	tm := start(t, f, 80, 30)
	waitFor(t, tm, "frontdesk2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "192.168.1.20/32")
	tm.Type("e")
	waitFor(t, tm, "Policy of ehr", "plain-ldap:", "mfa-remember: 15m")
	for range 4 { // to plain-ldap
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	tm.Type("yes")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("a fortnight")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, `mfa-remember: "a fortnight" is not a duration like 15m`)
	for range len("a fortnight") {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("13h")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "mfa-remember: 13h is not between 0 and 12h")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	}
	tm.Type("1h30m")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "policy of ehr saved", "plain allowed (!)") // the client list marks it
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.clients[0].Policy
	if !got.AllowPlainLDAP || got.MFARemember != 5400 || got.MFA != policy.MFARequired || !got.RequireMessageAuthenticator {
		t.Fatalf("saved policy %+v", got)
	}
}

func TestRememberDurations(t *testing.T) {
	for sec, want := range map[int]string{0: "0", 900: "15m", 3600: "1h", 5400: "1h30m", 90: "1m30s", 43200: "12h"} {
		if got := formatRemember(sec); got != want {
			t.Errorf("formatRemember(%d) = %q, want %q", sec, got, want)
		}
		if back, err := parseRemember(want); err != nil || back != sec {
			t.Errorf("parseRemember(%q) = %d, %v", want, back, err)
		}
	}
	for _, bad := range []string{"-1m", "12h1s", "soon"} {
		if _, err := parseRemember(bad); err == nil {
			t.Errorf("parseRemember(%q) accepted", bad)
		}
	}
}

func TestLDAPTargetFromStatus(t *testing.T) {
	cert := "LDAP certificate /var/lib/clinicgate/ldap-cert.pem (SHA-256 " + testFingerprint + ")"
	for _, c := range []struct {
		listeners []string
		want      string // addr, "ldaps " addr, or the start of the error
	}{
		{[]string{"RADIUS authentication [::]:1812/udp", "LDAP (StartTLS) 127.0.0.1:10389/tcp", "LDAPS 127.0.0.1:10636/tcp", cert}, "127.0.0.1:10389"},
		{[]string{"LDAP (StartTLS) [::]:389/tcp", cert}, "127.0.0.1:389"},
		{[]string{"LDAP (StartTLS) 0.0.0.0:389/tcp", cert}, "127.0.0.1:389"},
		{[]string{"LDAPS [::]:636/tcp", cert}, "ldaps 127.0.0.1:636"},
		{[]string{"LDAP (StartTLS) 192.168.1.5:389/tcp", cert}, "192.168.1.5:389"},
		{[]string{"LDAP (StartTLS) 127.0.0.1:10389/tcp"}, "the daemon did not report its LDAP certificate's fingerprint"},
		{[]string{"LDAP (StartTLS) 127.0.0.1:10389/tcp", "LDAP certificate /x.pem (SHA-256 D6:D3)"}, "the daemon did not report its LDAP certificate's fingerprint"},
		{[]string{"RADIUS authentication [::]:1812/udp"}, "the daemon does not listen for LDAP"},
	} {
		tg, err := ldapTargetOf(c.listeners)
		got := tg.addr.String()
		if tg.ldaps {
			got = "ldaps " + got
		}
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.listeners, got, c.want)
		}
		if err == nil && tg.fingerprint != testFingerprint {
			t.Errorf("%q: fingerprint %q", c.listeners, tg.fingerprint)
		}
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
	right := certFingerprint(der)
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

// TestLDAPTestLoginWithoutFingerprintIsRefused: when the daemon reports
// no certificate fingerprint, the test says why, sends nothing and adds
// no temporary client.
func TestLDAPTestLoginWithoutFingerprintIsRefused(t *testing.T) {
	f := ldapSample()
	f.status.Listeners = f.status.Listeners[:len(f.status.Listeners)-1] // no "LDAP certificate" line
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "192.168.1.20/32")
	tm.Type("l")
	waitFor(t, tm, "Test an LDAP login through ehr's policy")
	tm.Type("dr.lee")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("secret,123456")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "did not report its LDAP certificate's fingerprint", "does not send the password")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.clients) != 1 {
		t.Fatalf("clients after a refused test: %+v", f.clients)
	}
}

// TestLDAPLoopbackClientIsNotARADIUSSender: an LDAP client at 127.0.0.1
// has no shared secret, so a RADIUS test login must not go out as it.
func TestLDAPLoopbackClientIsNotARADIUSSender(t *testing.T) {
	clients := []store.Client{
		{Name: "ehr-local", Door: "ldap", Prefix: netip.MustParsePrefix("127.0.0.1/32")},
		{Name: "office-wifi", Door: "radius", Prefix: netip.MustParsePrefix("192.168.1.2/32"), Secret: []byte("office-wifi-secret-0123"), Policy: policy.Default()},
	}
	if v := loopbackVia(clients, appliance.DoorRADIUS, testClientName, loopback); v != nil {
		t.Fatalf("the RADIUS test would go out as %s", v.Name)
	}
	if v := loopbackVia(clients, appliance.DoorLDAP, testLDAPClientName, loopback); v == nil || v.Name != "ehr-local" {
		t.Fatalf("the LDAP test would go out as %v, want ehr-local", v)
	}
	clients = append(clients, store.Client{Name: "lab", Prefix: netip.MustParsePrefix("127.0.0.0/8")}) // no door: RADIUS
	if v := loopbackVia(clients, appliance.DoorRADIUS, testClientName, loopback); v == nil || v.Name != "lab" {
		t.Fatalf("the RADIUS test would go out as %v, want lab", v)
	}

	// And end to end against a RADIUS server that knows only the
	// temporary client's secret: the password arrives intact.
	f := sample()
	f.clients = clients[:2]
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	srv := &radius.PacketServer{
		SecretSource: secretFunc(func(context.Context, net.Addr) ([]byte, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if v := loopbackVia(f.clients, appliance.DoorRADIUS, "", loopback); v != nil {
				return v.Secret, nil
			}
			return nil, nil
		}),
		Handler: radius.HandlerFunc(func(w radius.ResponseWriter, r *radius.Request) {
			got <- rfc2865.UserPassword_GetString(r.Packet)
			w.Write(r.Response(radius.CodeAccessReject))
		}),
	}
	go srv.Serve(pc)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	m := New(f, Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	report, err := m.testLogin(t.Context(), pc.LocalAddr().String(), f.clients[1], "dr.lee", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if pw := <-got; pw != "correct horse" {
		t.Fatalf("the server decoded the password as %q: the request was sent with the wrong secret", pw)
	}
	if !strings.Contains(report, "Access-Reject") || !strings.Contains(report, "temporary client console-test") {
		t.Fatalf("report:\n%s", report)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.clients) != 2 {
		t.Fatalf("the temporary client was not removed: %+v", f.clients)
	}
}

type secretFunc func(context.Context, net.Addr) ([]byte, error)

func (s secretFunc) RADIUSSecret(ctx context.Context, a net.Addr) ([]byte, error) { return s(ctx, a) }
