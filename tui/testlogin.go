package tui

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
)

// The test login sends a real login through the running daemon under the
// policy of the chosen client: the admin service makes it (which client
// it goes out as, the pinned certificate of the LDAP door, the story from
// the audit) and the console shows what it found.

func (m Model) testLoginForm(c admin.Client) *form {
	if isLDAP(c) {
		return newForm("Test an LDAP login through "+c.Name+"'s policy", func(v []string) tea.Cmd {
			return m.testLoginCmd(admin.LoginTest{Client: c.Name, User: strings.TrimSpace(v[0]), Password: []byte(v[1])})
		},
			field("user", `who to log in as (alice, alice@clinic.local or CLINIC\alice)`, false, 128),
			field("password", "the password (append ,123456 for a code where the policy asks one)", true, 128),
		)
	}
	method := field("method", "empty: pap; ttls, ttls1.2, ttls1.3: 802.1X Wi-Fi (EAP-TTLS/PAP)", false, 8)
	method.input.Placeholder = "pap"
	f := newForm("Test login through "+c.Name+"'s policy", func(v []string) tea.Cmd {
		t := admin.LoginTest{Client: c.Name, User: strings.TrimSpace(v[1]), Password: []byte(v[2])}
		var err error
		if t.Method, t.TLSVersion, err = loginMethod(v[0]); err != nil {
			return func() tea.Msg { return doneMsg{err: err} }
		}
		return m.testLoginCmd(t)
	},
		method,
		field("user", "who to log in as", false, 128),
		field("password", "the password (append ,123456 for a code where the policy allows)", true, 128),
	)
	// The method is chosen less often than the user is typed: the cursor
	// starts on the user (up or shift+tab reaches the method).
	f.move(1)
	return f
}

// loginMethod reads the test login's method field.
func loginMethod(s string) (admin.LoginMethod, uint16, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "pap":
		return admin.LoginPAP, 0, nil
	case "ttls", "eap-ttls":
		return admin.LoginTTLS, 0, nil
	case "ttls1.2":
		return admin.LoginTTLS, tls.VersionTLS12, nil
	case "ttls1.3":
		return admin.LoginTTLS, tls.VersionTLS13, nil
	}
	return "", 0, fmt.Errorf("%w: the method is pap, ttls, ttls1.2 or ttls1.3, not %q", admin.ErrInvalid, s)
}

// testLoginCmd runs a test login and shows its result.
func (m Model) testLoginCmd(t admin.LoginTest) tea.Cmd {
	lt := m.p.Logins
	return m.act(func(ctx context.Context) doneMsg {
		if lt == nil {
			return doneMsg{err: fmt.Errorf("%w: this console cannot send test logins", admin.ErrInvalid)}
		}
		r, err := lt.TestLogin(ctx, t)
		if err != nil {
			return doneMsg{err: err}
		}
		text := "test login sent"
		if r.Door == appliance.DoorLDAP {
			text = "LDAP test login sent"
		}
		return doneMsg{text: text, show: loginReport(t.User, r)}
	})
}

// loginReport tells a test login's result: the answer, which client's
// policy applied, what the answer carried, and the decision's story.
func loginReport(user string, r admin.LoginResult) string {
	var b strings.Builder
	if r.Door == appliance.DoorLDAP {
		fmt.Fprintf(&b, "Test login of %s over %s: %s (%d) in %s\n%s\n", sanitize(user), r.Target, r.Outcome, r.Code, r.Took, sanitize(r.Note()))
		b.WriteString("The certificate was the appliance's (SHA-256 checked).\n\n")
		if r.Accepted {
			b.WriteString("  The bind was accepted: the EHR would log this user in.\n")
		}
		if r.Diagnostic != "" {
			fmt.Fprintf(&b, "  Diagnostic:  %s\n", sanitize(r.Diagnostic))
		}
	} else if r.Method == admin.LoginTTLS {
		over := r.Method.String()
		if r.TLSVersion != "" {
			over += " (" + r.TLSVersion + ")"
		}
		fmt.Fprintf(&b, "Test login of %s over %s: %s in %s\n%s\n", sanitize(user), over, r.Outcome, r.Took, sanitize(r.Note()))
		b.WriteString("The server passed a Wi-Fi device's check (the appliance's EAP CA and name).\n")
		if r.Accepted && r.KeysMatch {
			b.WriteString("The Wi-Fi keys (MPPE) match the tunnel's: a station would connect.\n")
		} else if r.Accepted {
			b.WriteString("! The Wi-Fi keys (MPPE) do not match the tunnel's: a station would not connect.\n")
		}
		b.WriteString("\n")
		for _, a := range r.Reply {
			fmt.Fprintf(&b, "  %-15s %s\n", a.Name+":", sanitize(a.Value))
		}
	} else {
		fmt.Fprintf(&b, "Test login of %s: %s in %s\n%s\n\n", sanitize(user), r.Outcome, r.Took, sanitize(r.Note()))
		for _, a := range r.Reply {
			fmt.Fprintf(&b, "  %-15s %s\n", a.Name+":", sanitize(a.Value))
		}
		if r.Challenged && pushChallenge(r.Reply) {
			b.WriteString("  (a push was sent: the user would now approve on the phone, choosing the number shown if any, then press OK)\n")
		} else if r.Challenged {
			b.WriteString("  (a code was asked for; a NAS would now prompt the user)\n")
		}
	}
	if s := r.Story; s != nil {
		fmt.Fprintf(&b, "\nWhat happened (audit entry %d, %s):\n", s.Seq, sanitize(s.Reason))
		for j, st := range storySteps(s.Steps) {
			fmt.Fprintf(&b, "  %d. %s\n", j+1, sanitize(st))
		}
	}
	return b.String()
}
