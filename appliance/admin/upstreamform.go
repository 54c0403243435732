package admin

import (
	"encoding/json"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/dirsync"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// UpstreamForm is what an operator gives for a new upstream, from the
// command line's flags or the console's form. Fields left empty take the
// kind's defaults. NewUpstream turns it into stored settings in one place,
// so the same answers store the same settings whichever way they came in.
type UpstreamForm struct {
	Name string
	// Kind is radius, ldap, oidc, or ad: LDAP with Active Directory's
	// defaults (users found by sAMAccountName).
	Kind   string
	Secret secrets.Secret // shared secret, bind password or client secret

	// RADIUS
	Servers []string
	// RequireMessageAuthenticator nil means required.
	RequireMessageAuthenticator *bool
	PassAttributes              []string
	BudgetMS                    int

	// RADIUS and LDAP
	GroupAttribute string
	TimeoutMS      int // OIDC too

	// LDAP
	URLs []string
	// StartTLS nil means on for ldap:// URLs, so that no password crosses
	// the network in clear unless the operator turned it off on purpose.
	StartTLS                      *bool
	CAFile                        string // OIDC too
	ClientCertFile, ClientKeyFile string
	BindDN, BaseDN                string
	UserAttribute, UserFilter     string
	GroupBaseDN                   string

	// OIDC
	Issuer, ClientID string
	Scopes           []string
	UsernameClaim    string
	GroupsClaim      string
	UsernameSuffix   string
	// Sync also pulls the provider's users and groups (Graph, Okta).
	Sync *dirsync.Config
}

// NewUpstream assembles the form into an upstream's settings, the kind's
// defaults filled in so the stored settings say what runs. AddUpstream
// validates them, by building the connector, before it stores them.
func (f UpstreamForm) NewUpstream() (NewUpstream, error) {
	kind := strings.ToLower(strings.TrimSpace(f.Kind))
	var cfg any
	switch kind {
	case upstream.KindRADIUS:
		c := upstream.RADIUSConfig{Servers: trimAll(f.Servers), RequireMessageAuthenticator: f.RequireMessageAuthenticator == nil || *f.RequireMessageAuthenticator,
			GroupAttribute: f.GroupAttribute, TimeoutMS: f.TimeoutMS, BudgetMS: f.BudgetMS, PassAttributes: f.PassAttributes}
		c.Defaults()
		cfg = c
	case upstream.KindLDAP, "ad":
		urls := trimAll(f.URLs)
		c := upstream.LDAPConfig{URLs: urls, CAFile: strings.TrimSpace(f.CAFile), ClientCertFile: f.ClientCertFile, ClientKeyFile: f.ClientKeyFile,
			BindDN: strings.TrimSpace(f.BindDN), BaseDN: strings.TrimSpace(f.BaseDN), UserAttribute: strings.TrimSpace(f.UserAttribute),
			UserFilter: f.UserFilter, GroupAttribute: f.GroupAttribute, GroupBaseDN: f.GroupBaseDN, TimeoutMS: f.TimeoutMS}
		if f.StartTLS != nil {
			c.StartTLS = *f.StartTLS
		} else {
			for _, u := range urls {
				if strings.HasPrefix(strings.ToLower(u), "ldap://") {
					c.StartTLS = true
				}
			}
		}
		if kind == "ad" && c.UserAttribute == "" {
			c.UserAttribute = "sAMAccountName"
		}
		kind = upstream.KindLDAP
		c.Defaults()
		cfg = c
	case upstream.KindOIDC:
		c := upstream.OIDCConfig{Issuer: strings.TrimSpace(f.Issuer), ClientID: strings.TrimSpace(f.ClientID), Scopes: f.Scopes,
			UsernameClaim: f.UsernameClaim, GroupsClaim: f.GroupsClaim, UsernameSuffix: strings.TrimSpace(f.UsernameSuffix),
			CAFile: strings.TrimSpace(f.CAFile), TimeoutMS: f.TimeoutMS}
		c.Defaults()
		cfg = c
	default:
		return NewUpstream{}, invalid("the kind must be radius, ldap, ad (Active Directory) or oidc, not %q", f.Kind)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return NewUpstream{}, err
	}
	if f.Sync != nil {
		if kind != upstream.KindOIDC {
			return NewUpstream{}, invalid("directory sync goes with an oidc upstream (LDAP and RADIUS directories are asked directly)")
		}
		sc := *f.Sync
		sc.Defaults()
		if err := sc.Validate(); err != nil {
			return NewUpstream{}, invalid("%v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return NewUpstream{}, err
		}
		m["sync"] = sc
		if b, err = json.Marshal(m); err != nil {
			return NewUpstream{}, err
		}
	}
	return NewUpstream{Name: strings.TrimSpace(f.Name), Kind: kind, Config: string(b), Secret: f.Secret}, nil
}

func trimAll(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
