package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// clientSettingsForm changes what the policy form does not: a client's
// address, its shared secret and its default session length (issue 14:
// none had a screen). "new" as the secret makes one and shows it once.
func (m Model) clientSettingsForm(c admin.Client) *form {
	f := newForm("Address, secret and session length of "+c.Name, func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			addr := strings.TrimSpace(v[0])
			e := admin.ClientEdit{Address: &addr, Version: c.Version}
			shown := ""
			switch sec := strings.TrimSpace(v[1]); sec {
			case "":
			case "new":
				g, err := admin.GenerateSecret(nil)
				if err != nil {
					return doneMsg{err: err}
				}
				e.Secret, shown = secrets.Secret(g), g
			default:
				e.Secret = secrets.Secret(sec)
			}
			timeout, err := parseTimeout(v[2])
			if err != nil {
				return doneMsg{err: err}
			}
			e.Policy = func(p *policy.Policy) error { p.SessionTimeout = timeout; return nil }
			if err := m.p.Clients.EditClient(ctx, c.Name, e); err != nil {
				return doneMsg{err: err}
			}
			done := doneMsg{text: c.Name + ": address, secret and session length saved"}
			if shown != "" {
				done.show = "The new shared secret of " + c.Name + ". Enter it on the NAS now; it is shown once:\n\n    " + shown +
					"\n\nUntil the NAS has it, its requests are dropped (the dashboard says \"wrong secret\")."
			}
			return done
		})
	},
		field("address", "the NAS's address or network, e.g. 192.168.1.2 or 10.0.20.0/24", false, 64),
		field("secret", "empty: keep it · new: make one (shown once) · or type the NAS's (16+ characters)", true, 128),
		field("session", "default Session-Timeout, e.g. 8h or 28800 (0: none)", false, 16),
	)
	f.fields[0].input.SetValue(c.Prefix.String())
	f.fields[2].input.SetValue(strconv.Itoa(c.Policy.SessionTimeout))
	return f
}

// parseTimeout reads a session length as seconds or as a duration.
func parseTimeout(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: session: %q is not seconds or a duration like 8h", admin.ErrInvalid, s)
	}
	return int(d / time.Second), nil
}
