package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
)

// The LDAP door's certificate, as the daemon reports it: a leaf of the
// appliance CA (appliance/pki/server.go) that the daemon renews itself,
// and the CA an EHR must trust once. c on the LDAP pane shows it whole.

// certMigrated is how long the dashboard reminds the operator that a
// first-wave install's LDAP certificate was replaced.
const certMigrated = 30 * 24 * time.Hour

// ldapCertLine is the LDAP pane's one line about the certificate.
func (m Model) ldapCertLine() string {
	d := m.daemon
	switch {
	case d == nil:
		return "the daemon has not reported"
	case d.LDAPCert == nil:
		return "the clinic's own (ldap.cert_file in the config file)"
	case d.LDAPCert.SelfSigned:
		return "self-signed (c: details)"
	}
	return "appliance CA leaf until " + m.clock().day(d.LDAPCert.NotAfter) + " · EHRs trust appliance-ca.pem"
}

// ldapCertText is the certificate screen: what to give an EHR.
func ldapCertText(d *admin.DaemonStatus, day func(time.Time) string) string {
	if d == nil {
		return "The daemon has not reported yet: is it running?"
	}
	c := d.LDAPCert
	if c == nil {
		return "The LDAP door uses the clinic's own certificate (ldap.cert_file in the config file):\ngive EHRs the CA that issued it."
	}
	var b strings.Builder
	pairs := func(k, fp string) {
		// 95 characters: two lines of 16 pairs, so that it fits 80 columns.
		fmt.Fprintf(&b, "%-10s %s\n", k, fp[:min(len(fp), 47)])
		if len(fp) > 48 {
			fmt.Fprintf(&b, "%-10s %s\n", "", fp[48:])
		}
	}
	if c.Changed != nil && c.Changed.Why == "migrated" {
		fmt.Fprintf(&b, "On %s this appliance replaced its self-signed LDAP certificate with\none issued by its own CA. Each EHR must now trust the CA below (once:\nthe daemon renews the certificate itself, and the CA stays).\n\n", day(c.Changed.At))
	}
	fmt.Fprintf(&b, "%-10s %s\n", "names", strings.Join(c.Names, ", "))
	fmt.Fprintf(&b, "%-10s %s (renewed a month before)\n", "until", day(c.NotAfter))
	pairs("SHA-256", c.SHA256)
	fmt.Fprintf(&b, "%-10s %s\n", "file", c.File)
	if c.SelfSigned {
		b.WriteString("\nThis certificate is its own CA (an install from before the appliance CA).\n")
		return strings.TrimRight(b.String(), "\n")
	}
	fmt.Fprintf(&b, "\nThe CA an EHR must trust: %s\n", c.CASubject)
	pairs("SHA-256", c.CASHA256)
	fmt.Fprintf(&b, "%-10s %s\n", "file", c.CAFile)
	b.WriteString("\nIt may certify only this host's names and private addresses.")
	return b.String()
}

// certLine is a dashboard line while a certificate change asks the
// operator to act (the first wave's certificate was replaced).
func (m Model) certLine(now time.Time) string {
	if m.daemon == nil || m.daemon.LDAPCert == nil {
		return ""
	}
	ch := m.daemon.LDAPCert.Changed
	if ch == nil || ch.Why != "migrated" || now.Sub(ch.At) > certMigrated {
		return ""
	}
	return warnStyle.Render(fit("LDAP certificate replaced "+m.clock().day(ch.At)+": EHRs must trust appliance-ca.pem (LDAP tab, c)", m.width))
}
