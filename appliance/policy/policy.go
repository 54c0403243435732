// Package policy holds the per-client policy and the small value types the
// decision pipeline evaluates (allowed hours, device addresses). It is pure:
// no I/O, no clock of its own, so the store, the gate and the admin commands
// can all share and test it.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MFA says whether a client demands a second factor.
type MFA string

const (
	// MFARequired rejects users without an enrolled factor.
	MFARequired MFA = "required"
	// MFAEnrolled asks a second factor only of users who have enrolled one;
	// the others pass with their password and the audit notes it. Meant for
	// the weeks of a roll-out.
	MFAEnrolled MFA = "enrolled"
	// MFAOff never asks a second factor.
	MFAOff MFA = "off"
)

// Style is how a RADIUS client carries the code.
type Style string

const (
	// StyleAuto uses a code appended as "password,123456" when present and
	// sends an Access-Challenge otherwise.
	StyleAuto Style = "auto"
	// StyleChallenge always asks in an Access-Challenge.
	StyleChallenge Style = "challenge"
	// StyleAppend only accepts "password,123456" in one request.
	StyleAppend Style = "append"
)

// Failmode says what happens when the upstream cannot be reached.
type Failmode string

const (
	// FailSecure rejects (the default).
	FailSecure Failmode = "secure"
	// FailCached accepts, while the upstream is unreachable, a password it
	// verified within the site's cache window, and only with TOTP.
	FailCached Failmode = "cached"
)

// Rule maps a group to reply attributes. The first rule whose group the user
// belongs to wins.
type Rule struct {
	Group          string `json:"group" yaml:"group"`
	VLAN           int    `json:"vlan,omitempty" yaml:"vlan,omitempty"`
	SessionTimeout int    `json:"session_timeout,omitempty" yaml:"session_timeout,omitempty"` // seconds
	Class          string `json:"class,omitempty" yaml:"class,omitempty"`
}

// Policy is what a client (a RADIUS NAS or an LDAP client) enforces.
type Policy struct {
	Upstream      string   `json:"upstream" yaml:"upstream"`
	MFA           MFA      `json:"mfa" yaml:"mfa"`
	Style         Style    `json:"mfa_style" yaml:"mfa_style"`
	RequireDevice bool     `json:"require_device" yaml:"require_device"`
	AllowedGroups []string `json:"allowed_groups,omitempty" yaml:"allowed_groups,omitempty"`
	Rules         []Rule   `json:"rules,omitempty" yaml:"rules,omitempty"`
	// SessionTimeout is the default Session-Timeout in seconds (0: none).
	SessionTimeout int      `json:"session_timeout,omitempty" yaml:"session_timeout,omitempty"`
	Failmode       Failmode `json:"failmode" yaml:"failmode"`
	// RequireMessageAuthenticator drops Access-Requests without a valid
	// Message-Authenticator (BlastRADIUS, CVE-2024-3596). Only very old
	// hardware needs it off.
	RequireMessageAuthenticator bool `json:"require_message_authenticator" yaml:"require_message_authenticator"`
	// AllowPlainLDAP lets an LDAP client bind without TLS (LDAPS or
	// StartTLS). Off by default: a plain bind sends the password in clear.
	AllowPlainLDAP bool `json:"allow_plain_ldap,omitempty" yaml:"allow_plain_ldap,omitempty"`
	// MFARemember is how long, in seconds, a verified code is remembered
	// for the same user, client and source address, so that an EHR that
	// binds again every few minutes with the same password does not ask
	// again (0: never remembered).
	MFARemember int `json:"mfa_remember,omitempty" yaml:"mfa_remember,omitempty"`
	// EAPMethods are the EAP methods this client's stations may use, in
	// the order the appliance offers them (EAPTTLS, EAPPEAP, EAPTLS).
	// Empty means all three; each is offered only where the appliance is
	// set up for it (EAP-TLS needs trust anchors).
	EAPMethods []string `json:"eap_methods,omitempty" yaml:"eap_methods,omitempty"`
	// AllowMSCHAP lets this client's users log in with MS-CHAPv2 (PEAP,
	// and VPN gateways without EAP), and keeps an NT hash of the password
	// of each user who logs in through this client with PAP or EAP-TTLS.
	// Off by default: an NT hash is an unsalted MD4, far weaker than
	// argon2id.
	AllowMSCHAP bool `json:"allow_mschap,omitempty" yaml:"allow_mschap,omitempty"`
	// EAPIdentity is what an EAP conversation's outer identity may be:
	// EAPIdentityAny (the default; both are audited) or EAPIdentityMatch
	// (the inner one, or anonymous, optionally with a realm).
	EAPIdentity string `json:"eap_identity,omitempty" yaml:"eap_identity,omitempty"`
	// Posture is the device rule: known, compliant, the user's own, and
	// what a failure does (posture.go, docs/posture.md). RequireDevice,
	// the first wave's rule, is the same as Device known + Owner with
	// the device found by hand-bound MAC only.
	Posture Posture `json:"posture,omitzero" yaml:"posture,omitempty"`
	// Push is the client's push MFA provider (Duo, Okta Verify) and how
	// it waits for the phone (push.go); the zero value is TOTP only.
	Push Push `json:"push,omitzero" yaml:"push,omitempty"`
}

// The EAP methods a client may allow.
const (
	EAPTTLS = "ttls"
	EAPPEAP = "peap"
	EAPTLS  = "tls"
)

// AllEAPMethods is the default list, in the order offered.
var AllEAPMethods = []string{EAPTTLS, EAPPEAP, EAPTLS}

// The outer identity policies.
const (
	EAPIdentityAny   = "any"
	EAPIdentityMatch = "match"
)

// ParseEAPMethods reads a comma-separated list of EAP methods as an
// operator types it ("ttls, peap"). The full list in its default order is
// stored as nil, the default; Validate checks the names.
func ParseEAPMethods(s string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(s, ",") {
		if m = strings.ToLower(strings.TrimSpace(m)); m != "" {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("name at least one EAP method of ttls, peap, tls")
	}
	if slices.Equal(out, AllEAPMethods) {
		return nil, nil
	}
	return out, nil
}

// EAPAllowed is the client's EAP methods, in the order offered.
func (p Policy) EAPAllowed() []string {
	if len(p.EAPMethods) == 0 {
		return AllEAPMethods
	}
	return p.EAPMethods
}

// MaxMFARemember bounds MFARemember: one working day.
const MaxMFARemember = 12 * 3600

// Default is the policy a new client gets: local users, MFA required, either
// code style, Message-Authenticator required, fail closed.
func Default() Policy {
	return Policy{
		Upstream:                    "local",
		MFA:                         MFARequired,
		Style:                       StyleAuto,
		Failmode:                    FailSecure,
		RequireMessageAuthenticator: true,
	}
}

// MaxVLAN is the highest IEEE 802.1Q VLAN id.
const MaxVLAN = 4094

// Validate reports every problem in p in one error, in the operator's words.
func (p Policy) Validate() error {
	var errs []error
	if strings.TrimSpace(p.Upstream) == "" {
		errs = append(errs, errors.New("upstream is empty: use \"local\" or the name of a configured upstream"))
	}
	if !slices.Contains([]MFA{MFARequired, MFAEnrolled, MFAOff}, p.MFA) {
		errs = append(errs, fmt.Errorf("mfa must be required, enrolled or off, not %q", p.MFA))
	}
	if !slices.Contains([]Style{StyleAuto, StyleChallenge, StyleAppend}, p.Style) {
		errs = append(errs, fmt.Errorf("mfa style must be auto, challenge or append, not %q", p.Style))
	}
	switch p.Failmode {
	case FailSecure:
	case FailCached:
		if p.Upstream == "local" {
			errs = append(errs, errors.New("failmode cached only applies to an upstream; local users are always checked on the appliance"))
		}
	default:
		errs = append(errs, fmt.Errorf("failmode must be secure or cached, not %q", p.Failmode))
	}
	for _, g := range p.AllowedGroups {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, errors.New("an allowed group is empty"))
		}
	}
	if p.SessionTimeout < 0 {
		errs = append(errs, errors.New("session timeout cannot be negative"))
	}
	if p.MFARemember < 0 || p.MFARemember > MaxMFARemember {
		errs = append(errs, fmt.Errorf("mfa remember must be from 0 to %d seconds (12 hours)", MaxMFARemember))
	}
	seen := map[string]bool{}
	for _, m := range p.EAPMethods {
		if !slices.Contains(AllEAPMethods, m) {
			errs = append(errs, fmt.Errorf("EAP method %q is not one of ttls, peap, tls", m))
		} else if seen[m] {
			errs = append(errs, fmt.Errorf("EAP method %q is listed twice", m))
		}
		seen[m] = true
	}
	if !slices.Contains([]string{"", EAPIdentityAny, EAPIdentityMatch}, p.EAPIdentity) {
		errs = append(errs, fmt.Errorf("eap identity must be any or match, not %q", p.EAPIdentity))
	}
	errs = append(errs, p.Posture.validate()...)
	errs = append(errs, p.Push.validate()...)
	for i, r := range p.Rules {
		if strings.TrimSpace(r.Group) == "" {
			errs = append(errs, fmt.Errorf("rule %d has no group", i+1))
		}
		if r.VLAN < 0 || r.VLAN > MaxVLAN {
			errs = append(errs, fmt.Errorf("rule %d: VLAN %d is outside 1-%d (0 sends no VLAN)", i+1, r.VLAN, MaxVLAN))
		}
		if r.SessionTimeout < 0 {
			errs = append(errs, fmt.Errorf("rule %d: session timeout cannot be negative", i+1))
		}
		if len(r.Class) > 253 {
			errs = append(errs, fmt.Errorf("rule %d: class is longer than 253 bytes", i+1))
		}
	}
	return errors.Join(errs...)
}

// RuleFor returns the first rule matching one of groups.
func (p Policy) RuleFor(groups []string) (Rule, bool) {
	for _, r := range p.Rules {
		for _, g := range groups {
			if strings.EqualFold(g, r.Group) {
				return r, true
			}
		}
	}
	return Rule{}, false
}

// GroupAllowed reports whether a member of groups may use this client.
func (p Policy) GroupAllowed(groups []string) bool {
	if len(p.AllowedGroups) == 0 {
		return true
	}
	for _, a := range p.AllowedGroups {
		for _, g := range groups {
			if strings.EqualFold(a, g) {
				return true
			}
		}
	}
	return false
}
