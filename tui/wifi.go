package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
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
	b.WriteString("\n" + dimStyle.Render(fit("p: an Apple profile into exports/ · d: the device CA (SCEP) · docs/wifi.md", m.width)) + "\n")
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

// WiFiJobs is what the Wi-Fi pane's files come from (the admin service):
// an Apple profile ('wifi profile') and the device CA ('scep ca').
type WiFiJobs interface {
	WriteWiFiProfile(ctx context.Context, r admin.WiFiProfileRequest) (admin.WiFiProfileFile, error)
	DeviceCAPEM(ctx context.Context) (string, error)
}

func (m Model) wifiJobs() (WiFiJobs, bool) {
	j, ok := m.p.Audit.(WiFiJobs)
	return j, ok
}

// scepDoorURL is the URL devices enrol at, as the running daemon
// reported it (its scep.public_url, or its listen address), and the
// door's HTTPS certificate; ok is false when it reported no SCEP door.
func scepDoorURL(d *admin.DaemonStatus) (url, certFile string, ok bool) {
	if d == nil || d.SCEP == nil {
		return "", "", false
	}
	return d.SCEP.URL, d.SCEP.CertFile, true
}

// wifiProfileForm writes an Apple profile into exports/ for SFTP. With
// scep yes (and the method tls), the profile also enrols the device's
// certificate from the appliance's SCEP door ('wifi profile --scep'): a
// one-time challenge is made for it unless one is typed, and shown once.
func (m Model) wifiProfileForm(j WiFiJobs) *form {
	cert := ""
	if m.daemon != nil && m.daemon.EAP != nil {
		cert = m.daemon.EAP.CertFile
	}
	scepURL, scepCert, known := scepDoorURL(m.daemon)
	urlHelp := "the SCEP door's URL, as the daemon reports it"
	if !known {
		urlHelp = "the daemon reports no SCEP door: set scep.listen (docs/scep.md)"
	}
	f := newForm("Apple Wi-Fi profile (.mobileconfig) into exports/", func(v []string) tea.Cmd {
		r := admin.WiFiProfileRequest{SSID: strings.TrimSpace(v[0]), Method: strings.ToLower(strings.TrimSpace(v[1])), Organization: strings.TrimSpace(v[2]),
			WPA3: strings.EqualFold(strings.TrimSpace(v[3]), "yes"), CertFile: cert}
		withSCEP := strings.EqualFold(strings.TrimSpace(v[4]), "yes")
		if withSCEP {
			if r.Method == "" {
				r.Method = "tls" // the certificate is the device's EAP-TLS identity
			}
			r.SCEP = &admin.WiFiSCEP{URL: strings.TrimSpace(v[5]), CertFile: scepCert, Challenge: strings.TrimSpace(v[6]),
				Device: admin.SCEPChallengeRequest{Device: strings.TrimSpace(v[7]), User: strings.TrimSpace(v[8])}}
		}
		return m.act(func(ctx context.Context) doneMsg {
			p, err := j.WriteWiFiProfile(ctx, r)
			if err != nil {
				return doneMsg{err: err}
			}
			text := "profile written to " + p.Path + " (fetch it over SFTP from exports/)"
			if p.Challenge == nil {
				return doneMsg{text: text}
			}
			show := fmt.Sprintf("The profile is %s (fetch it over SFTP from exports/).\n\n"+
				"It holds one-time SCEP challenge %d, usable once until %s: give the profile to one device only.\n"+
				"The challenge, shown only now (it is in the profile; c on Devices withdraws it):\n\n    %s\n\n"+
				"The device enrols its certificate at %s and joins %s with EAP-TLS.",
				p.Path, p.Challenge.ID, m.clock().full(p.Challenge.ExpiresAt), p.Challenge.Challenge, r.SCEP.URL, r.SSID)
			return doneMsg{text: text, show: show}
		})
	},
		field("ssid", "the network's name", false, 32),
		field("method", "ttls (password), peap or tls (a device certificate: its MDM's, or SCEP below)", false, 4),
		field("org", "the clinic's name, shown on the profile", false, 64),
		field("wpa3", "yes: WPA3-Enterprise only (empty: WPA2, which WPA2/3 networks accept)", false, 3),
		field("scep", "yes: the device enrols its own certificate here, no MDM (method tls)", false, 3),
		withValue(field("scep url", urlHelp, false, 200), scepURL),
		field("challenge", "one from n on Devices; empty: a one-time one is made now", false, 64),
		field("device", "the device's name: its inventory record gets the certificate", false, 64),
		field("user", "its owner: EAP-TLS logs in as this user (empty: none)", false, 64))
	if !known {
		f.note = append(f.note, "SCEP: the daemon reports no SCEP door (scep.listen, docs/scep.md)")
	}
	return f
}

func (m Model) deviceCACmd(j WiFiJobs) tea.Cmd {
	return m.act(func(ctx context.Context) doneMsg {
		pem, err := j.DeviceCAPEM(ctx)
		if err != nil {
			return doneMsg{err: err}
		}
		return doneMsg{show: "The device CA (SCEP), for an MDM's trust or SCEP payload:\n\n" + strings.TrimRight(pem, "\n")}
	})
}
