package tui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

const testPEM = "-----BEGIN CERTIFICATE-----\nMIIBfakefakefake\n-----END CERTIFICATE-----\n"

func TestWiFiPaneShowsWhatDevicesMustTrust(t *testing.T) {
	f := sample()
	f.status.EAP = &admin.EAPStatus{
		CAPEM: testPEM, CASubject: "gate.clinic.example", ServerName: []string{"gate.clinic.example"},
		CASHA256: "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89",
		CAThumb:  "0123456789ABCDEF0123456789ABCDEF01234567",
		NotAfter: t0.AddDate(10, 0, 0),
		CertFile: "/var/lib/clinicgate/eap-cert.pem",
		Anchors:  []string{"Clinic MDM CA 11:22:33"},
	}
	tm := startPanes(t, Panes{Audit: fakeAudit{f}}, 80, 24)
	waitFor(t, tm, "chain unbroken")
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab}) // the last pane
	waitFor(t, tm, "server name", "the appliance's own, self-signed", "(Windows shows this)", "1 trust anchor")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("c")})
	waitFor(t, tm, "BEGIN CERTIFICATE", "MIIBfakefakefake")
	s := screen(t, tm)
	for _, l := range strings.Split(s, "\n") {
		if len([]rune(l)) > 80 {
			t.Errorf("a line wider than 80 columns: %q", l)
		}
	}
}

func TestWiFiPaneWithoutEAP(t *testing.T) {
	f := sample()
	tm := startPanes(t, Panes{Audit: fakeAudit{f}}, 80, 24)
	waitFor(t, tm, "chain unbroken")
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	waitFor(t, tm, "802.1X is off")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("c")})
	waitFor(t, tm, "reports no EAP server")
}

// TestWiFiProfileWithSCEPPayload: the console makes what 'wifi profile
// --scep' makes, a profile that enrols the device's certificate by
// itself: the URL comes from the running SCEP door, a one-time challenge
// is made for it and shown once.
func TestWiFiProfileWithSCEPPayload(t *testing.T) {
	f := sample()
	f.status.EAP = &admin.EAPStatus{CAPEM: testPEM, CASubject: "gate.clinic.example", ServerName: []string{"gate.clinic.example"},
		NotAfter: t0.AddDate(10, 0, 0), CertFile: "/var/lib/clinicgate/eap-cert.pem"}
	f.status.SCEP = &admin.SCEPDoorStatus{URL: "https://gate.clinic.example:9443/scep", CertFile: "/var/lib/clinicgate/ldap-cert.pem"}
	tm := startPanes(t, Panes{Audit: fakeAudit{f}}, 80, 24)
	waitFor(t, tm, "chain unbroken")
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab}) // the Wi-Fi pane
	waitFor(t, tm, "server name")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("p")})
	waitFor(t, tm, "Apple Wi-Fi profile", "scep url:", "https://gate.clinic.example:9443/scep")
	tab := func() { tm.Send(tea.KeyMsg{Type: tea.KeyTab}) }
	tm.Type("Staff")
	tab()
	tm.Type("tls")
	tab()
	tab()
	tab()
	tm.Type("yes") // scep
	tab()          // to the URL, as the daemon reported it
	tab()          // to the challenge: none, one is made
	tab()
	tm.Type("front-mac")
	tab()
	tm.Type("dr.lee")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "Q7ZK-ONCE-2M4P", "usable once")
	s := screen(t, tm)
	for _, want := range []string{"Staff-tls-scep-9.mobileconfig", "one device only"} {
		if !strings.Contains(s, want) {
			t.Errorf("the screen lacks %q:\n%s", want, s)
		}
	}
	if lines := strings.Split(strings.TrimRight(s, "\n"), "\n"); len(lines) > 24 {
		t.Errorf("%d lines, want at most 24:\n%s", len(lines), s)
	}
	for _, l := range strings.Split(s, "\n") {
		if len([]rune(l)) > 80 {
			t.Errorf("a line wider than 80 columns: %q", l)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.wifiProfiles) != 1 {
		t.Fatalf("got %d profile requests, want 1", len(f.wifiProfiles))
	}
	r := f.wifiProfiles[0]
	want := admin.WiFiSCEP{URL: "https://gate.clinic.example:9443/scep", CertFile: "/var/lib/clinicgate/ldap-cert.pem",
		Device: admin.SCEPChallengeRequest{Device: "front-mac", User: "dr.lee"}}
	if r.Method != "tls" || r.SCEP == nil || *r.SCEP != want {
		t.Fatalf("got %+v (SCEP %+v), want method tls and SCEP %+v", r, r.SCEP, want)
	}
}

// TestWiFiProfileWithoutSCEP: the SCEP fields are ignored unless asked
// for, so a ttls profile is the plain one it always was.
func TestWiFiProfileWithoutSCEP(t *testing.T) {
	f := sample()
	f.status.EAP = &admin.EAPStatus{CAPEM: testPEM, CASubject: "gate.clinic.example", ServerName: []string{"gate.clinic.example"},
		NotAfter: t0.AddDate(10, 0, 0), CertFile: "/var/lib/clinicgate/eap-cert.pem"}
	tm := startPanes(t, Panes{Audit: fakeAudit{f}}, 80, 24)
	waitFor(t, tm, "chain unbroken")
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	waitFor(t, tm, "server name")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("p")})
	waitFor(t, tm, "Apple Wi-Fi profile", "no SCEP door")
	tm.Type("Staff")
	for range 9 { // every field left as it is, then save
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	waitFor(t, tm, "Staff-.mobileconfig")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.wifiProfiles) != 1 || f.wifiProfiles[0].SCEP != nil {
		t.Fatalf("got %+v, want one profile without SCEP", f.wifiProfiles)
	}
}
