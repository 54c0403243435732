package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// The Wi-Fi pane: what every 802.1X device must be told to trust (the
// EAP server's CA and name), as the running daemon reports it, and the
// CA's PEM to copy into a Wi-Fi profile. Methods per client are on the
// Clients pane (e).

func (m Model) viewWiFi(h int) string {
	var b strings.Builder
	line := func(k, v string) { b.WriteString(fit(fmt.Sprintf("%-12s %s", k, v), m.width) + "\n") }
	b.WriteString(fit("c: show the CA to copy (PEM) · devices must trust this CA and check this name", m.width) + "\n")
	d := m.daemon
	switch {
	case d == nil:
		b.WriteString("(the daemon has not reported yet: is it running?)\n")
		return b.String()
	case d.EAP == nil:
		b.WriteString("(the daemon runs no EAP server: 802.1X is off)\n")
		return b.String()
	}
	e := d.EAP
	line("server name", strings.Join(e.ServerName, ", "))
	switch {
	case e.CASubject == "":
		line("CA", "not in "+e.CertFile+": give devices the CA that issued it")
	case len(e.ServerName) > 0 && e.CASubject == e.ServerName[0]:
		line("CA", e.CASubject+" (the appliance's own, self-signed)")
	default:
		line("CA", e.CASubject)
	}
	until := m.clock().day(e.NotAfter)
	if left := time.Until(e.NotAfter); left < 30*24*time.Hour {
		until = rejectStyle.Render(until + fmt.Sprintf(" (%d days left: renew it, then give devices the new CA)", int(left.Hours()/24)))
	}
	line("valid until", until)
	if e.CASHA256 != "" {
		// 95 characters: two lines of 16 pairs, so that it fits 80 columns.
		fp := e.CASHA256
		line("SHA-256", fp[:min(len(fp), 47)])
		if len(fp) > 48 {
			line("", fp[48:])
		}
		line("SHA-1", e.CAThumb+" (Windows shows this)")
	}
	line("file", e.CertFile)
	b.WriteString("\n")
	if len(e.Anchors) == 0 {
		b.WriteString(fit("EAP-TLS: no trust anchors (eap-client-ca.pem): device certificates are not asked for", m.width) + "\n")
	} else {
		b.WriteString(fit(fmt.Sprintf("EAP-TLS: %d trust anchor(s) for device certificates:", len(e.Anchors)), m.width) + "\n")
		for i, a := range e.Anchors {
			if i >= h-12 {
				break
			}
			b.WriteString(fit("  "+a, m.width) + "\n")
		}
	}
	b.WriteString("\n" + dimStyle.Render(fit("Apple profile: clinicgate wifi profile --ssid NAME (docs/wifi.md)", m.width)) + "\n")
	return b.String()
}

// wifiCA is the CA's PEM to copy, or why there is none.
func wifiCA(d *admin.DaemonStatus) string {
	switch {
	case d == nil || d.EAP == nil:
		return "The daemon reports no EAP server."
	case d.EAP.CAPEM == "":
		return "The CA that issued " + d.EAP.CertFile + " is not in that file: give devices that CA."
	}
	return "Copy this into the Wi-Fi profile as the trusted CA (" + d.EAP.CASubject + "):\n\n" + strings.TrimRight(d.EAP.CAPEM, "\n")
}
