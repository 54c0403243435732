package tui

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/policy"
)

// parsePush reads the provider field ("duo", "okta:challenge", empty or
// "totp" for none) over old, keeping the per-group providers (set with
// 'clinicgate mfa push --group').
func parsePush(s string, old policy.Push) (policy.Push, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == policy.TOTP {
		if len(old.Groups) > 0 {
			old.Provider, old.Mode = policy.TOTP, ""
			return old, nil
		}
		return policy.Push{}, nil
	}
	prov, mode, _ := strings.Cut(s, ":")
	if mode != "" && !slices.Contains([]policy.PushMode{policy.PushAuto, policy.PushHold, policy.PushChallenge}, policy.PushMode(mode)) {
		return old, fmt.Errorf("%w: push: the mode after %q is auto, hold or challenge, not %q", admin.ErrInvalid, prov+":", mode)
	}
	old.Provider, old.Mode = prov, policy.PushMode(mode)
	return old, nil
}

// pushChallenge tells a push's Access-Challenge from a code's by its
// Reply-Message.
func pushChallenge(reply []admin.ReplyAttribute) bool {
	return slices.ContainsFunc(reply, func(a admin.ReplyAttribute) bool {
		return a.Name == "Reply-Message" && (a.Value == appliance.MsgPush || a.Value == appliance.MsgPushWaiting ||
			strings.HasPrefix(a.Value, strings.SplitN(appliance.MsgPushNumber, "%s", 2)[0]))
	})
}

// pushForm picks a client's push MFA provider and how its logins wait
// (docs/upstreams/duo.md): what a contractor sets when the clinic's VPN
// should send Duo or Okta Verify pushes.
func (m Model) pushForm(c admin.Client) *form {
	p := c.Policy.Push
	budget := ""
	if p.Budget != 0 {
		budget = strconv.Itoa(p.Budget)
	}
	f := newForm("Push MFA of "+c.Name, func(v []string) tea.Cmd {
		return m.act(func(ctx context.Context) doneMsg {
			push, err := parsePush(v[0], p)
			if err != nil {
				return doneMsg{err: err}
			}
			if mode := strings.TrimSpace(v[1]); mode != "" {
				push.Mode = policy.PushMode(strings.ToLower(mode))
			}
			push.Budget = 0
			if b := strings.TrimSpace(v[2]); b != "" {
				if push.Budget, err = strconv.Atoi(b); err != nil {
					return doneMsg{err: fmt.Errorf("%w: budget: %q is not a number of seconds", admin.ErrInvalid, b)}
				}
			}
			push.Fallback = policy.PushFallback(strings.ToLower(strings.TrimSpace(v[3])))
			if push.Provider == "" {
				push = policy.Push{}
			}
			err = m.p.Clients.EditClient(ctx, c.Name, admin.ClientEdit{Version: c.Version, Policy: func(pol *policy.Policy) error {
				pol.Push = push
				return nil
			}})
			if err != nil {
				return doneMsg{err: err}
			}
			if push.Provider == "" {
				return doneMsg{text: c.Name + ": TOTP codes only, no push"}
			}
			return doneMsg{text: fmt.Sprintf("%s: push through %s (mode %s); try it with l (test login)", c.Name, push.Provider, push.EffectiveMode())}
		})
	},
		field("provider", "a provider's name (duo, okta…: 'clinicgate mfa provider list'); empty: TOTP codes only", false, 32),
		field("mode", "auto, hold (answer when approved) or challenge (approve, then press OK)", false, 10),
		field("budget", "hold a login at most this many seconds (empty: 25; the NAS's own timer may shorten it)", false, 4),
		field("fallback", "when the provider is unreachable: reject, or totp (ask the TOTP code)", false, 6),
	)
	f.fields[0].input.SetValue(p.Provider)
	f.fields[1].input.SetValue(string(p.EffectiveMode()))
	f.fields[2].input.SetValue(budget)
	fb := string(p.Fallback)
	if fb == "" {
		fb = string(policy.PushFallbackReject)
	}
	f.fields[3].input.SetValue(fb)
	return f
}

// fraudAlert is the dashboard's alert for a push reported as fraud in the
// last day (the gate locked the account and wrote an "alert" entry):
// someone else knows that password. "" when there is none.
func (m Model) fraudAlert() string {
	for i := len(m.entries) - 1; i >= 0; i-- {
		r := m.entries[i]
		if r.Kind != "system" || r.Outcome != "alert" || r.Reason != string(appliance.ReasonMFAPushFraud) {
			continue
		}
		if m.opts.Now().Sub(r.At) > 24*time.Hour {
			return ""
		}
		return fmt.Sprintf("! %s reported a push as fraud at %s: account locked. Change the password, then unlock (u on Users).",
			sanitize(r.User), m.clock().stamp(r.At))
	}
	return ""
}
