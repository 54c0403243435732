package tui

import (
	"crypto/tls"
	"net/netip"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/policy"
)

// The real admin service is what the console drives in production.
var _ Admin = (*admin.Service)(nil)
var _ AuditJobs = (*admin.Service)(nil)
var _ DeviceJobs = (*admin.Service)(nil)
var _ CertFileRegistrar = (*admin.Service)(nil)
var _ DaemonLogReader = (*admin.Service)(nil)
var _ AuditCopier = (*admin.Service)(nil)
var _ UpstreamSyncer = (*admin.Service)(nil)
var _ WiFiJobs = (*admin.Service)(nil)
var _ CertLister = (*admin.Service)(nil)

const testFingerprint = "D6:D3:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:C5:46"

// ldapSample is sample() with an LDAP door: its listeners, settings, two
// bind accounts and an LDAP client.
func ldapSample() *fakeAdmin {
	f := sample()
	f.status.Listeners = append(f.status.Listeners,
		admin.Listener{Door: admin.ListenLDAP, Network: "tcp", Address: "[::]:389", CertSHA256: testFingerprint},
		admin.Listener{Door: admin.ListenLDAPS, Network: "tcp", Address: "[::]:636", CertSHA256: testFingerprint})
	f.status.LDAPCert = &admin.CertStatus{File: "/var/lib/clinicgate/ldap-cert.pem", SHA256: testFingerprint, Names: []string{"gate", "localhost", "127.0.0.1", "192.168.1.5"},
		NotAfter: t0.AddDate(1, 0, 0), CAFile: "/var/lib/clinicgate/appliance-ca.pem", CASubject: "clinicgate appliance CA (gate)", CASHA256: strings.Repeat("AB:", 31) + "CD"}
	f.settings = map[string]string{"ldap_base_dn": "dc=clinic,dc=local", "ldap_domain": "clinic.local", "ldap_netbios": "CLINIC"}
	f.binds = []admin.BindAccount{
		{Name: "ehr-search", Networks: []netip.Prefix{netip.MustParsePrefix("192.168.1.20/32")}, CreatedAt: t0},
		{Name: "pacs-lookup", Networks: []netip.Prefix{netip.MustParsePrefix("192.168.1.30/32"), netip.MustParsePrefix("10.20.0.0/24")}, CreatedAt: t0.Add(-48 * time.Hour)},
	}
	p := policy.Default()
	p.MFARemember = 900
	f.clients = []admin.Client{{Name: "ehr", Door: "ldap", Prefix: netip.MustParsePrefix("192.168.1.20/32"), Policy: p, Version: 1}}
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

// c on the LDAP pane shows the certificate and the CA an EHR must trust;
// a first-wave certificate replaced at the upgrade is said on the
// dashboard until the operator has had a month to act.
func TestLDAPCertificateScreen(t *testing.T) {
	f := ldapSample()
	f.status.LDAPCert.Changed = &admin.CertChange{At: t0.Add(-time.Hour), Why: "migrated", SHA256: testFingerprint}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2", "LDAP certificate replaced", "EHRs must trust appliance-ca.pem")
	toLDAPTab(t, tm)
	waitFor(t, tm, "pacs-lookup", "appliance CA leaf until")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("c")})
	waitFor(t, tm, "replaced its self-signed LDAP certificate", "D6:D3:00:11", "AB:AB:AB", "/var/lib/clinicgate/appliance-ca.pem", "private addresses")
}

// The smart lockout's counters: a refused source is said on the
// dashboard, and b lists every source with failures counted.
func TestLockoutCountersOnDashboard(t *testing.T) {
	f := sample()
	f.status.Throttled = []appliance.Throttled{
		{Kind: "login", User: "dr.lee", Client: "office-vpn", Address: "203.0.113.9", Until: t0.Add(time.Hour + 10*time.Minute), Last: t0.Add(time.Hour - time.Minute)},
		{Kind: "bind", User: "ehr-search", Address: "192.168.1.66", Fails: 2, Last: t0.Add(time.Hour - 2*time.Minute)},
	}
	tm := start(t, f, 80, 24)
	waitFor(t, tm, "frontdesk2", "lockout: 1 source(s) refused", "dr.lee ← 203.0.113.9 via office-vpn")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("b")})
	waitFor(t, tm, "REFUSED until", "ehr-search (bind account)", "2 failure(s)", "from 192.168.1.66")
}

func TestLDAPTabByMouse(t *testing.T) {
	tm := start(t, ldapSample(), 80, 24)
	waitFor(t, tm, "frontdesk2")
	// "Dashboard │ … │ Devices │ LDAP │ Wi-Fi": LDAP is at 60-63.
	tm.Send(tea.MouseMsg{X: 61, Y: 0, Button: tea.MouseButtonLeft, Action: tea.MouseActionRelease})
	waitFor(t, tm, "pacs-lookup")
	// A click on the second bind account selects it: x then removes it.
	tm.Send(tea.MouseMsg{X: 3, Y: ldapFirstRow + 1, Button: tea.MouseButtonLeft, Action: tea.MouseActionRelease})
	tm.Type("x")
	waitFor(t, tm, "Remove the bind account pacs-lookup?")
}

func TestTabBarFitsEightyColumns(t *testing.T) {
	for _, v := range []string{"test", "v1.12.3-rc1+dirty", ""} {
		m := NewPanes(sample().panes(), Options{Version: v})
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
	wide := NewPanes(sample().panes(), Options{Version: "test"})
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
	waitFor(t, tm, "Remove the bind account ehr-search?", "type ehr-search")
	tm.Type("y") // a y alone is not enough
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, `nothing changed: "y" is not "ehr-search"`)
	tm.Type("x")
	waitFor(t, tm, "Remove the bind account ehr-search?")
	tm.Type("ehr-search")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
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
	for range 5 { // to plain-ldap
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

// TestLDAPTestLoginWithoutFingerprintIsRefused: when the daemon reports
// no certificate fingerprint, the console says why (the admin service's
// own test shows nothing is sent and no temporary client added).
func TestLDAPTestLoginWithoutFingerprintIsRefused(t *testing.T) {
	f := ldapSample()
	for i := range f.status.Listeners {
		f.status.Listeners[i].CertSHA256 = "" // an older daemon's report
	}
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
	if len(f.clients) != 1 || len(f.logins) != 0 {
		t.Fatalf("after a refused test: clients %+v, logins %+v", f.clients, f.logins)
	}
}

// TestTestLoginReport: the console shows what a test login found: the
// answer, whose policy applied, the reply's attributes, and the story.
func TestTestLoginReport(t *testing.T) {
	f := sample()
	f.clients = []admin.Client{{Name: "office-wifi", Door: "radius", Prefix: netip.MustParsePrefix("192.168.1.2/32"), Policy: policy.Default()}}
	f.login = admin.LoginResult{Door: appliance.DoorRADIUS, Client: "office-wifi", Via: "console-test", Temporary: true,
		Outcome: "Access-Accept", Code: 2, Accepted: true, Took: 12 * time.Millisecond,
		Reply: []admin.ReplyAttribute{{Name: "Reply-Message", Value: "welcome\x1b[2J"}, {Name: "VLAN", Value: "30"}},
		Story: &admin.DecisionStory{Seq: 7, Outcome: "accept", Reason: "ok", Steps: []audit.Step{{Stage: "password", Result: "verified by local"}}}}
	tm := startPanes(t, Panes{Audit: fakeAudit{f}, Clients: fakeClients{f}, Logins: fakeLogins{f}}, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "office-wifi")
	tm.Type("l")
	waitFor(t, tm, "Test login through office-wifi's policy")
	tm.Type("dr.lee")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("correct horse")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "Test login of dr.lee: Access-Accept in 12ms", "temporary client console-test with office-wifi's policy",
		"VLAN:           30", "What happened (audit entry 7, ok):", "1. password   verified by local")
	if out := screen(t, tm); strings.ContainsAny(out, "\x1b") || strings.Contains(out, "correct horse") {
		t.Fatalf("a control character or the password reached the screen:\n%s", out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.logins) != 1 || f.logins[0].Client != "office-wifi" || f.logins[0].User != "dr.lee" || string(f.logins[0].Password) != "correct horse" {
		t.Fatalf("test logins asked for: %+v", f.logins)
	}
}

// TestTTLSTestLoginReport: the test login's method field sends an
// EAP-TTLS/PAP login with the TLS version asked for, and the console shows
// the tunnel's version, the keys' check and the reply, at 80x24.
func TestTTLSTestLoginReport(t *testing.T) {
	f := sample()
	f.clients = []admin.Client{{Name: "office-wifi", Door: "radius", Prefix: netip.MustParsePrefix("192.168.1.2/32"), Policy: policy.Default()}}
	f.login = admin.LoginResult{Door: appliance.DoorRADIUS, Client: "office-wifi", Via: "console-test", Temporary: true,
		Outcome: "Access-Accept", Code: 2, Accepted: true, Took: 48 * time.Millisecond,
		Method: admin.LoginTTLS, TLSVersion: "TLS 1.3", KeysMatch: true,
		Reply: []admin.ReplyAttribute{{Name: "VLAN", Value: "30"}, {Name: "User-Name", Value: "dr.lee"}},
		Story: &admin.DecisionStory{Seq: 9, Outcome: "accept", Reason: "ok", Steps: []audit.Step{{Stage: "password", Result: "verified by local"}}}}
	tm := startPanes(t, Panes{Audit: fakeAudit{f}, Clients: fakeClients{f}, Logins: fakeLogins{f}}, 80, 24)
	waitFor(t, tm, "frontdesk2")
	for range 3 {
		tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	}
	waitFor(t, tm, "office-wifi")
	tm.Type("l")
	waitFor(t, tm, "Test login through office-wifi's policy", "> user:")
	// The cursor starts on the user; the method is one up.
	tm.Send(tea.KeyMsg{Type: tea.KeyUp})
	waitFor(t, tm, "> method:", "802.1X Wi-Fi (EAP-TTLS/PAP)")
	tm.Type("ttls2")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("dr.lee")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("correct horse")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, `the method is pap, ttls, ttls1.2 or ttls1.3, not "ttls2"`)
	tm.Send(tea.KeyMsg{Type: tea.KeyUp})
	tm.Send(tea.KeyMsg{Type: tea.KeyUp})
	tm.Send(tea.KeyMsg{Type: tea.KeyBackspace})
	tm.Type("1.3")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "Test login of dr.lee over EAP-TTLS/PAP (TLS 1.3): Access-Accept in 48ms",
		"passed a Wi-Fi device's check", "keys (MPPE) match", "VLAN:           30", "User-Name:      dr.lee",
		"What happened (audit entry 9, ok):")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.logins) != 1 || f.logins[0].Method != admin.LoginTTLS || f.logins[0].TLSVersion != tls.VersionTLS13 || f.logins[0].User != "dr.lee" {
		t.Fatalf("test logins asked for: %+v", f.logins)
	}
}
