package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// MFAProviderConfig is a push MFA provider as the CLI and the console set
// it: exactly one of Duo and Okta.
type MFAProviderConfig struct {
	Name string
	Duo  *mfa.DuoSettings
	Okta *mfa.OktaSettings
	// Secret is Duo's secret key or Okta's API token; nil keeps the
	// stored one.
	Secret secrets.Secret
}

var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// SetMFAProvider creates or replaces a provider, after building its client
// (no network traffic) to check the settings. The gate uses the new
// settings within a second.
func (s *Service) SetMFAProvider(ctx context.Context, c MFAProviderConfig) error {
	if !providerName.MatchString(c.Name) || c.Name == policy.TOTP {
		return invalid("a provider name is 1-32 lower-case letters, digits, - or _ (and not %q), not %q", policy.TOTP, c.Name)
	}
	var kind string
	var settings any
	switch {
	case c.Duo != nil && c.Okta == nil:
		kind, settings = mfa.KindDuo, c.Duo
	case c.Okta != nil && c.Duo == nil:
		kind, settings = mfa.KindOkta, c.Okta
	default:
		return invalid("a provider is duo or okta, with its settings")
	}
	b, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	p := store.MFAProvider{Name: c.Name, Kind: kind, Settings: string(b), Secret: c.Secret}
	old, err := s.Store.MFAProviderByName(ctx, c.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if c.Secret == nil {
			return invalid("%s has no secret stored yet: give it with --secret-stdin (Duo's secret key, or Okta's API token)", c.Name)
		}
	case err != nil:
		return err
	case old.Kind != kind:
		return invalid("%s is a %s provider; remove it first to make it %s", c.Name, old.Kind, kind)
	}
	check := c.Secret
	if check == nil {
		check = old.Secret
	}
	if _, err := mfa.Build(kind, p.Settings, check); err != nil {
		return invalid("%v", err)
	}
	detail := fmt.Sprintf("MFA provider %s (%s) set: %s", c.Name, kind, p.Settings)
	if c.Secret != nil {
		detail += " (secret replaced)"
	}
	return s.change(ctx, audit.Entry{Reason: "mfa_provider_set", Detail: detail}, func(tx *store.Tx) error {
		return tx.PutMFAProvider(ctx, p, s.Now())
	})
}

// MFAProviderStatus is what `mfa provider list` and the console show of a
// provider: never its secret.
type MFAProviderStatus struct {
	Name, Kind string
	// Summary is what a contractor recognises: the API host and
	// integration key, or the org URL.
	Summary string
	// Clients are the clients that use it.
	Clients []string
}

// MFAProviders lists the configured providers.
func (s *Service) MFAProviders(ctx context.Context) ([]MFAProviderStatus, error) {
	ps, err := s.Store.MFAProviders(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := s.Store.Clients(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []MFAProviderStatus
	for _, p := range ps {
		st := MFAProviderStatus{Name: p.Name, Kind: p.Kind}
		switch p.Kind {
		case mfa.KindDuo:
			var d mfa.DuoSettings
			_ = json.Unmarshal([]byte(p.Settings), &d)
			st.Summary = d.APIHost + " (integration key " + d.IntegrationKey + ")"
		case mfa.KindOkta:
			var o mfa.OktaSettings
			_ = json.Unmarshal([]byte(p.Settings), &o)
			st.Summary = o.OrgURL
			if o.NumberMatching {
				st.Summary += " (number matching)"
			}
		}
		for _, c := range cs {
			if usesProvider(c.Policy.Push, p.Name) {
				st.Clients = append(st.Clients, c.Name)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

func usesProvider(p policy.Push, name string) bool {
	if strings.EqualFold(p.Provider, name) {
		return true
	}
	for _, g := range p.Groups {
		if strings.EqualFold(g.Provider, name) {
			return true
		}
	}
	return false
}

// RemoveMFAProvider removes a provider no client uses.
func (s *Service) RemoveMFAProvider(ctx context.Context, name string) error {
	cs, err := s.Store.Clients(ctx, "")
	if err != nil {
		return err
	}
	for _, c := range cs {
		if usesProvider(c.Policy.Push, name) {
			return invalid("client %s uses %s; give it another provider first ('clinicgate client set %s --push-provider totp')", c.Name, name, c.Name)
		}
	}
	return s.change(ctx, audit.Entry{Reason: "mfa_provider_remove", Detail: "MFA provider " + name + " removed"}, func(tx *store.Tx) error {
		if err := tx.DeleteMFAProvider(ctx, name); errors.Is(err, store.ErrNotFound) {
			return invalid("there is no MFA provider %q", name)
		} else {
			return err
		}
	})
}

// SetClientPush sets a client's push MFA; EditClient checks that its
// providers exist.
func (s *Service) SetClientPush(ctx context.Context, client string, p policy.Push) error {
	return s.EditClient(ctx, client, ClientEdit{Policy: func(pol *policy.Policy) error {
		pol.Push = p
		return nil
	}})
}

// checkPushProviders refuses a push policy naming a provider that is not
// configured.
func (s *Service) checkPushProviders(ctx context.Context, p policy.Push) error {
	names := []string{p.Provider}
	for _, g := range p.Groups {
		names = append(names, g.Provider)
	}
	for _, n := range names {
		if n == "" || n == policy.TOTP {
			continue
		}
		if _, err := s.Store.MFAProviderVersion(ctx, n); errors.Is(err, store.ErrNotFound) {
			return invalid("there is no MFA provider %q: add it with 'clinicgate mfa provider set %s --duo …' or '--okta …'", n, n)
		} else if err != nil {
			return err
		}
	}
	return nil
}
