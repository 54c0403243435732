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
