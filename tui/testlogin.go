package tui

import (
	"context"
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
	return newForm("Test login through "+c.Name+"'s policy", func(v []string) tea.Cmd {
		return m.testLoginCmd(admin.LoginTest{Client: c.Name, User: strings.TrimSpace(v[0]), Password: []byte(v[1])})
	},
		field("user", "who to log in as", false, 128),
		field("password", "the password (append ,123456 for a code where the policy allows)", true, 128),
	)
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
	} else {
		fmt.Fprintf(&b, "Test login of %s: %s in %s\n%s\n\n", sanitize(user), r.Outcome, r.Took, sanitize(r.Note()))
		for _, a := range r.Reply {
			fmt.Fprintf(&b, "  %-15s %s\n", a.Name+":", sanitize(a.Value))
		}
		if r.Challenged {
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
