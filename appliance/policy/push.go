package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// PushMode is how a client waits for a push (docs/upstreams/duo.md).
type PushMode string

const (
	// PushAuto holds the request while the NAS's learned budget is long
	// enough for a push, and answers with an Access-Challenge otherwise
	// (or once the budget is spent). The default.
	PushAuto PushMode = "auto"
	// PushHold holds the request and answers when the push completes,
	// rejecting when the budget is spent first.
	PushHold PushMode = "hold"
	// PushChallenge answers at once with an Access-Challenge ("Approve on
	// your phone, then press OK — or type a code"); the next request in
	// that State polls the push.
	PushChallenge PushMode = "challenge"
)

// PushFallback says what happens when the push provider cannot be reached.
type PushFallback string

const (
	PushFallbackReject PushFallback = "reject" // the default: fail closed
	PushFallbackTOTP   PushFallback = "totp"   // ask the user's TOTP code instead
)

// MaxPushBudget caps the answer-within budget: no NAS waits longer.
const MaxPushBudget = 120

// Push is a client's push MFA: which provider (by name, as set with
// 'clinicgate mfa provider set'), per group if need be, and how to wait.
// The zero value is no push: the built-in TOTP.
type Push struct {
	Provider string `json:"provider,omitempty" yaml:"provider,omitempty"`
	// Groups choose another provider (or "totp") for members of a group;
	// the first group the user is in wins.
	Groups []GroupProvider `json:"groups,omitempty" yaml:"groups,omitempty"`
	Mode   PushMode        `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Budget caps, in seconds, how long a request is held (0: 25 s). The
	// gate learns the NAS's own patience from its retransmits and never
	// holds longer than that either.
	Budget   int          `json:"budget,omitempty" yaml:"budget,omitempty"`
	Fallback PushFallback `json:"fallback,omitempty" yaml:"fallback,omitempty"`
}

// GroupProvider picks a provider for a group's members.
type GroupProvider struct {
	Group    string `json:"group" yaml:"group"`
	Provider string `json:"provider" yaml:"provider"`
}

// TOTP names the built-in factor where a provider is expected.
const TOTP = "totp"

// ProviderFor is the provider for a user in groups: a group's, else the
// client's; "" or "totp" means the built-in TOTP.
func (p Push) ProviderFor(groups []string) string {
	for _, gp := range p.Groups {
		for _, g := range groups {
			if strings.EqualFold(g, gp.Group) {
				return gp.Provider
			}
		}
	}
	return p.Provider
}

// EffectiveMode is Mode with its default.
func (p Push) EffectiveMode() PushMode {
	if p.Mode == "" {
		return PushAuto
	}
	return p.Mode
}

// BudgetSeconds is Budget with its default.
func (p Push) BudgetSeconds() int {
	if p.Budget == 0 {
		return 25
	}
	return p.Budget
}

func (p Push) validate() []error {
	var errs []error
	if !slices.Contains([]PushMode{"", PushAuto, PushHold, PushChallenge}, p.Mode) {
		errs = append(errs, fmt.Errorf("push mode must be auto, hold or challenge, not %q", p.Mode))
	}
	if !slices.Contains([]PushFallback{"", PushFallbackReject, PushFallbackTOTP}, p.Fallback) {
		errs = append(errs, fmt.Errorf("push fallback must be reject or totp, not %q", p.Fallback))
	}
	if p.Budget < 0 || p.Budget > MaxPushBudget {
		errs = append(errs, fmt.Errorf("push budget must be from 1 to %d seconds (0: the default, 25)", MaxPushBudget))
	}
	for i, gp := range p.Groups {
		if strings.TrimSpace(gp.Group) == "" || strings.TrimSpace(gp.Provider) == "" {
			errs = append(errs, fmt.Errorf("push group %d needs a group and a provider", i+1))
		}
	}
	if len(p.Groups) > 0 && p.Provider == "" {
		errs = append(errs, errors.New("push groups need a provider for everyone else too (use \"totp\" for the built-in codes)"))
	}
	return errs
}
