package tui

import (
	"context"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// The push MFA providers (Duo, Okta Verify), m on the Upstreams pane:
// listed, added or replaced (the secret typed masked, kept sealed), or
// removed by their typed name. Which client uses which is set with p on
// the Clients pane. Without this form a shell-less appliance could pick
// a provider but never create one.

func (m Model) mfaProvidersCmd() tea.Cmd {
	return m.act(func(ctx context.Context) doneMsg {
		ps, err := m.p.Upstreams.MFAProviders(ctx)
		if err != nil {
			return doneMsg{err: err}
		}
		return doneMsg{next: m.mfaProvidersForm(ps)}
	})
}

func (m Model) mfaProvidersForm(ps []admin.MFAProviderStatus) *form {
	f := newForm("Push MFA providers (Duo, Okta Verify); p on Clients picks one", func(v []string) tea.Cmd {
		name, kind, addr, ikey, drop := strings.TrimSpace(v[0]), strings.ToLower(strings.TrimSpace(v[1])), strings.TrimSpace(v[2]), strings.TrimSpace(v[3]), strings.TrimSpace(v[6])
		secret, numbers := v[4], strings.ToLower(strings.TrimSpace(v[5]))
		return m.act(func(ctx context.Context) doneMsg {
			if drop != "" {
				if name != "" || secret != "" {
					return doneMsg{err: fmt.Errorf("%w: add a provider or remove one, not both at once", admin.ErrInvalid)}
				}
				if err := m.p.Upstreams.RemoveMFAProvider(ctx, drop); err != nil {
					return doneMsg{err: err}
				}
				return doneMsg{text: "MFA provider " + drop + " removed"}
			}
			if name == "" {
				return doneMsg{text: "MFA providers: nothing changed"}
			}
			c := admin.MFAProviderConfig{Name: name}
			if secret != "" {
				c.Secret = secrets.Secret(secret)
			}
			switch kind {
			case "duo":
				c.Duo = &admin.DuoSettings{APIHost: addr, IntegrationKey: ikey}
			case "okta":
				if ikey != "" {
					return doneMsg{err: fmt.Errorf("%w: Okta has no integration key: leave it empty (the API token goes in secret)", admin.ErrInvalid)}
				}
				c.Okta = &admin.OktaSettings{OrgURL: addr, NumberMatching: numbers == "yes"}
			default:
				return doneMsg{err: fmt.Errorf("%w: kind: duo or okta", admin.ErrInvalid)}
			}
			if numbers != "" && numbers != "yes" && numbers != "no" || numbers == "yes" && kind != "okta" {
				return doneMsg{err: fmt.Errorf("%w: number match: yes or no, for Okta (Duo's verified push needs nothing here)", admin.ErrInvalid)}
			}
			if err := m.p.Upstreams.SetMFAProvider(ctx, c); err != nil {
				return doneMsg{err: err}
			}
			return doneMsg{text: "MFA provider " + name + " (" + kind + ") saved; p on Clients sends its pushes"}
		})
	},
		field("name", "a name for it, e.g. duo (empty: add nothing)", false, 32),
		field("kind", "duo or okta", false, 8),
		field("host / URL", "Duo: the API hostname (api-XXXX.duosecurity.com); Okta: https://clinic.okta.com", false, 200),
		field("ikey", "Duo: the integration key; Okta: empty", false, 64),
		field("secret", "Duo: the secret key; Okta: the API token (empty: keep the stored one)", true, 256),
		field("number match", "Okta: yes asks the user to pick the number shown at login", false, 3),
		field("remove", "type the name of a provider to remove, exactly as listed", false, 32))
	if len(ps) == 0 {
		f.note = []string{"No push provider yet: logins use TOTP."}
	}
	for i, p := range ps {
		if i == 6 {
			f.note = append(f.note, fmt.Sprintf("… and %d more (clinicgate mfa provider list)", len(ps)-6))
			break
		}
		used := "unused"
		if len(p.Clients) > 0 {
			used = "used by " + strings.Join(p.Clients, ", ")
		}
		f.note = append(f.note, fit(fmt.Sprintf("%-10s %-5s %s · %s", clip(p.Name, 10), p.Kind, p.Summary, used), 78))
	}
	return f
}

// UpstreamSyncer pulls an upstream's directory now (y on the Upstreams
// pane: 'upstream sync').
type UpstreamSyncer interface {
	SyncUpstream(ctx context.Context, name string) (admin.DirStats, error)
}

func (m Model) syncUpstreamCmd(name string) tea.Cmd {
	j, ok := m.p.Upstreams.(UpstreamSyncer)
	if !ok {
		return nil
	}
	return m.act(func(ctx context.Context) doneMsg {
		st, err := j.SyncUpstream(ctx, name)
		if err != nil {
			return doneMsg{err: err}
		}
		msg := fmt.Sprintf("%s synced: %d users, %d groups (%d new, %d changed, %d disabled)", name, st.Users, st.Groups, st.Created, st.Updated, st.Disabled)
		if len(st.Conflicts) > 0 {
			msg += fmt.Sprintf("; %d skipped: %s", len(st.Conflicts), strings.Join(st.Conflicts, "; "))
		}
		return doneMsg{text: msg}
	})
}
