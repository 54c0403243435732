package tui

import (
	"context"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
)

// The first-boot wizard: on an appliance with no users and no clients the
// console walks the contractor from a fresh image to a working login —
// time zone, an admin SSH key, where the accounts live, the first RADIUS
// client, the first user, and a test login through the running daemon —
// each step through the same admin operations as everywhere else, and
// each skippable with esc.

type freshMsg struct{ fresh bool }

const (
	wizTimeZone = iota + 1
	wizSSHKey
	wizUpstream
	wizClient
	wizUser
	wizTestLogin
	wizDone
)

func (m Model) checkFresh() tea.Cmd {
	if !m.p.wizard() {
		return nil
	}
	a := m.p.Wizard
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fresh, err := a.Fresh(ctx)
		return freshMsg{fresh: err == nil && fresh}
	}
}

// wizardForm returns the form of a step (nil for the last screen).
func (m Model) wizardForm(step int) *form {
	var f *form
	switch step {
	case wizTimeZone:
		f = newForm("Welcome to clinicgate — step 1 of 6: the clinic's time zone", func(v []string) tea.Cmd {
			return m.act(func(ctx context.Context) doneMsg {
				tz := strings.TrimSpace(v[0])
				if tz == "" {
					return doneMsg{text: "time zone: the system's"}
				}
				if err := m.p.Wizard.SetSetting(ctx, "timezone", tz); err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: "time zone " + tz}
			})
		}, field("time zone", "e.g. America/Chicago or Europe/Berlin (allowed hours use it); empty: the system's", false, 64))
	case wizSSHKey:
		f = newForm("Step 2 of 6: your SSH key, to open this console from your laptop", func(v []string) tea.Cmd {
			return m.act(func(ctx context.Context) doneMsg {
				if strings.TrimSpace(v[1]) == "" {
					return doneMsg{text: "no SSH key added (add one later: clinicgate admin add-key)"}
				}
				fp, err := m.p.Wizard.AddAdminKey(ctx, strings.TrimSpace(v[0]), v[1])
				if err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: "SSH key " + fp + " added"}
			})
		},
			field("name", "who holds the key, e.g. dana-laptop", false, 64),
			field("key", "paste one line of your .pub file (ssh-ed25519 AAAA…); empty: skip", false, 4096))
	case wizUpstream:
		f = m.addUpstreamForm()
		f.title = "Step 3 of 6: where the clinic's accounts live (esc: on this appliance)"
	case wizClient:
		f = m.addClientFormWith(m.wizUpstream, false)
		f.title = "Step 4 of 6: the first device that asks (Wi-Fi controller, VPN gateway)"
	case wizUser:
		f = m.addUserForm()
		f.title = "Step 5 of 6: the first person who logs in (or one to enrol for TOTP, with an upstream)"
	case wizTestLogin:
		f = m.wizardTestLoginForm()
	}
	return f
}

// wizardTestLoginForm sends a real login through the running daemon under
// the policy of the client added in step 4 (or the first RADIUS client),
// as the Clients pane's test login does, and shows the answer and why.
func (m Model) wizardTestLoginForm() *form {
	want := m.wizClient
	f := newForm("Step 6 of 6: a test login through the running appliance (esc: skip)", func(v []string) tea.Cmd {
		return m.testLoginCmd(admin.LoginTest{Client: want, Door: appliance.DoorRADIUS, User: strings.TrimSpace(v[0]), Password: []byte(v[1])})
	},
		field("user", "the user from step 5", false, 128),
		field("password", "their password (append ,123456 if they have a code already)", true, 128),
	)
	return f
}

const wizardDone = `Setup done.

Point the device at this appliance (RADIUS, port 1812, the secret it was
shown) and log in as the user. The login appears on the dashboard within a
second; enter on it tells why, if it was refused.

Enrol the user's second factor on the Users pane (m), and add more users
and devices there and on the Clients pane (a).

(any key: go to the dashboard)`
