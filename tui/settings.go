package tui

import (
	"context"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
)

// siteSettingKeys are the site settings the Dashboard's form edits (e):
// what the wizard set once (the time zone) and what a contractor tunes
// later. The LDAP door's are on the LDAP pane. The same checks and audit
// as 'clinicgate settings set'.
var siteSettingKeys = []struct{ key, label string }{
	{"timezone", "time zone"},
	{"lockout_threshold", "lockout after"},
	{"lockout_minutes", "lockout min"},
	{"challenge_seconds", "code prompt s"},
	{"totp_window", "TOTP window"},
	{"cache_hours", "cache hours"},
	{"ntp_servers", "ntp servers"},
}

// siteSettingsCmd reads the settings, then opens the form on them.
func (m Model) siteSettingsCmd() tea.Cmd {
	return m.act(func(ctx context.Context) doneMsg {
		cur, err := m.p.Wizard.SiteSettings(ctx)
		if err != nil {
			return doneMsg{err: err}
		}
		return doneMsg{next: m.siteSettingsForm(cur)}
	})
}

func (m Model) siteSettingsForm(old map[string]string) *form {
	fields := make([]formField, len(siteSettingKeys))
	for i, k := range siteSettingKeys {
		help := ""
		if spec, ok := appliance.SettingSpecs[k.key]; ok {
			help = spec.Help
		}
		fields[i] = withValue(field(k.label, help, false, 64), old[k.key])
	}
	return newForm("Site settings (the same as 'clinicgate settings set')", func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			var changed []string
			for i, k := range siteSettingKeys {
				val := strings.TrimSpace(v[i])
				if val == old[k.key] {
					continue
				}
				if err := appliance.CheckSetting(k.key, val); err != nil {
					return doneMsg{err: fmt.Errorf("%w: %s: %s", admin.ErrInvalid, k.label, settingProblem(k.key, err))}
				}
				changed = append(changed, k.key)
			}
			if len(changed) == 0 {
				return doneMsg{text: "site settings: nothing changed"}
			}
			for _, k := range changed {
				if err := m.p.Wizard.SetSetting(ctx, k, strings.TrimSpace(v[indexOfSetting(k)])); err != nil {
					return doneMsg{err: err}
				}
			}
			return doneMsg{text: "site settings saved (" + strings.Join(changed, ", ") + "); logins use them within a second"}
		})
	}, fields...)
}

func indexOfSetting(key string) int {
	for i, k := range siteSettingKeys {
		if k.key == key {
			return i
		}
	}
	return -1
}

// onlineCmd shows who is online: the open RADIUS accounting sessions
// (Wi-Fi and VPN), newest first, as 'clinicgate acct list --active', and
// under them the sessions that ended lately, as 'clinicgate acct list'.
func (m Model) onlineCmd() tea.Cmd {
	return m.act(func(ctx context.Context) doneMsg {
		ss, err := m.p.Wizard.AcctSessions(ctx, true, 40)
		if err != nil {
			return doneMsg{err: err}
		}
		all, err := m.p.Wizard.AcctSessions(ctx, false, 40)
		if err != nil {
			return doneMsg{err: err}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "Who is online: %d open accounting %s (Wi-Fi, VPN), newest first\n\n", len(ss), plural(len(ss), "session", "sessions"))
		if len(ss) == 0 {
			b.WriteString("(none: no NAS has reported a session that is still open; point its accounting at port 1813)")
		}
		fmt.Fprintf(&b, "%-16s %-18s %-15s %-12s %s\n", "USER", "STATION", "ADDRESS", "CLIENT", "SINCE")
		for _, s := range ss {
			fmt.Fprintf(&b, "%-16s %-18s %-15s %-12s %s\n", clip(s.UserName, 16), clip(s.CallingStation, 18), clip(s.FramedAddress, 15), clip(s.Client, 12), m.clock().minute(s.StartedAt))
		}
		// The ended ones fill what the open ones leave of the screen.
		var ended []admin.AcctSession
		for _, s := range all {
			if s.Status != admin.AcctActive && len(ss)+len(ended) < 12 {
				ended = append(ended, s)
			}
		}
		if len(ended) > 0 {
			fmt.Fprintf(&b, "\nEnded lately (the newest; a .deb install lists all: clinicgate acct list)\n%-16s %-18s %-12s %-12s %s\n", "USER", "STATION", "CLIENT", "ENDED", "CAUSE")
			for _, s := range ended {
				end := s.StoppedAt
				if end.IsZero() {
					end = s.UpdatedAt
				}
				fmt.Fprintf(&b, "%-16s %-18s %-12s %-12s %s\n", clip(s.UserName, 16), clip(s.CallingStation, 18), clip(s.Client, 12), m.clock().minute(end), clip(dashIfBlank(s.TerminateCause), 16))
			}
		}
		return doneMsg{show: strings.TrimRight(b.String(), "\n")}
	})
}
