package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// OIDCConfig configures an OpenID Provider checked with the OAuth 2.0
// resource owner password grant (RFC 6749 §4.3): Entra ID, Okta, Keycloak,
// authentik, LemonLDAP::NG.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// Scopes requested (default openid profile email).
	Scopes []string `json:"scopes,omitempty"`
	// UsernameClaim names the ID token claim that holds the login name
	// (default preferred_username); GroupsClaim the group list (default
	// groups).
	UsernameClaim string `json:"username_claim,omitempty"`
	GroupsClaim   string `json:"groups_claim,omitempty"`
	// UsernameSuffix is appended to names typed without one (Entra ID
	// wants alice@clinic.onmicrosoft.com).
	UsernameSuffix string `json:"username_suffix,omitempty"`
	// CAFile is a PEM bundle to trust instead of the system's.
	CAFile    string `json:"ca_file,omitempty"`
	TimeoutMS int    `json:"timeout_ms"`
}

// Defaults fills unset fields.
func (c *OIDCConfig) Defaults() {
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = "preferred_username"
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if c.TimeoutMS == 0 {
		c.TimeoutMS = 3000
	}
}

// Validate reports every problem at once.
func (c OIDCConfig) Validate() error {
	var errs []error
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		errs = append(errs, errors.New("issuer is empty (for Entra ID: https://login.microsoftonline.com/TENANT-ID/v2.0)"))
	case err != nil || u.Host == "":
		errs = append(errs, fmt.Errorf("issuer %q is not a URL", c.Issuer))
	case u.Scheme != "https" && !isLoopback(u.Hostname()):
		errs = append(errs, fmt.Errorf("issuer %q must use https (passwords are sent to it)", c.Issuer))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("client_id is empty"))
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		errs = append(errs, errors.New("scopes must include openid (clinicgate checks the ID token)"))
	}
	if c.TimeoutMS < 100 || c.TimeoutMS > 30000 {
		errs = append(errs, fmt.Errorf("timeout_ms %d is outside 100-30000", c.TimeoutMS))
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// OIDC checks passwords with the password grant and accepts a user only
// with an ID token whose signature (against the provider's JWKS), issuer,
// audience and expiry verify.
type OIDC struct {
	cfg    OIDCConfig
	name   string
	secret string
	client *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	endpoint oauth2.Endpoint
}

// authStyle picks how the client secret travels from what the provider
// says it supports. Leaving it to the library's auto-detection would, after
// any error, repeat the request the other way: a wrong password would then
// count twice towards the provider's lockout.
func authStyle(p *oidc.Provider) oauth2.AuthStyle {
	var meta struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&meta); err == nil && len(meta.Methods) > 0 &&
		!slices.Contains(meta.Methods, "client_secret_basic") && slices.Contains(meta.Methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	// client_secret_basic is the default RFC 6749 requires servers to support.
	return oauth2.AuthStyleInHeader
}

// NewOIDC builds the connector; discovery happens on first use.
func NewOIDC(name, config string, clientSecret secrets.Secret) (*OIDC, error) {
	var c OIDCConfig
	if err := parseConfig(name, config, &c); err != nil {
		return nil, err
	}
	tc, err := tlsConfig(name, c.CAFile)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second,
		ResponseHeaderTimeout: time.Duration(c.TimeoutMS) * time.Millisecond, Proxy: http.ProxyFromEnvironment}
	return &OIDC{cfg: c, name: name, secret: string(clientSecret),
		client: &http.Client{Transport: tr, Timeout: time.Duration(c.TimeoutMS) * time.Millisecond}}, nil
}

// Close releases idle connections.
func (o *OIDC) Close() { o.client.CloseIdleConnections() }

// Warnings lists weak settings.
func (o *OIDC) Warnings() []string {
	if strings.HasPrefix(o.cfg.Issuer, "http://") {
		return []string{"the issuer is plain http (allowed only on loopback, for testing)"}
	}
	return nil
}

func (o *OIDC) discover(ctx context.Context) (*oidc.IDTokenVerifier, oauth2.Endpoint, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, o.endpoint, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.client), o.cfg.Issuer)
	if err != nil {
		return nil, oauth2.Endpoint{}, fmt.Errorf("%w: %s: discovery at %s: %v", ErrUnreachable, o.name, o.cfg.Issuer, err)
	}
	o.provider = p
	// The verifier refuses alg "none" and any algorithm the provider does
	// not advertise; keys come from the provider's JWKS and are refreshed
	// when an unknown key id appears.
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID})
	o.endpoint = p.Endpoint()
	o.endpoint.AuthStyle = authStyle(p)
	return o.verifier, o.endpoint, nil
}

// Probe fetches the discovery document anew (the cached one would say
// nothing about the provider now).
func (o *OIDC) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(o.cfg.TimeoutMS)*time.Millisecond)
	defer cancel()
	if _, err := oidc.NewProvider(oidc.ClientContext(ctx, o.client), o.cfg.Issuer); err != nil {
		return fmt.Errorf("%w: %s: discovery at %s: %v", ErrUnreachable, o.name, o.cfg.Issuer, err)
	}
	return nil
}

// aadCode finds Entra ID's AADSTS code in an error description.
var aadCode = regexp.MustCompile(`AADSTS(\d+)`)

// Verify asks for tokens with the user's password and checks the ID token.
func (o *OIDC) Verify(ctx context.Context, user string, password secrets.Secret) (Identity, error) {
	if len(password) == 0 {
		return Identity{}, ErrBadCredentials
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(o.cfg.TimeoutMS)*time.Millisecond)
	defer cancel()
	verifier, endpoint, err := o.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	login := user
	if o.cfg.UsernameSuffix != "" && !strings.Contains(login, "@") {
		login += o.cfg.UsernameSuffix
	}

	conf := &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.secret, Endpoint: endpoint, Scopes: o.cfg.Scopes}
	tok, err := conf.PasswordCredentialsToken(oidc.ClientContext(ctx, o.client), login, string(password))
	if err != nil {
		return Identity{}, o.mapTokenError(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: %s answered without an ID token (is the openid scope allowed for this client?)", ErrUpstreamRefused, o.name)
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		// A token that does not verify is a refusal, never "unreachable":
		// it must not open the way to the credential cache.
		return Identity{}, fmt.Errorf("%w: %s: the ID token did not verify: %v", ErrUpstreamRefused, o.name, err)
	}
	return o.identity(idt, user)
}

func (o *OIDC) identity(idt *oidc.IDToken, typed string) (Identity, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: %s: ID token claims: %v", ErrUpstreamRefused, o.name, err)
	}
	id := Identity{Name: typed}
	if v, ok := claims[o.cfg.UsernameClaim].(string); ok && v != "" {
		id.Name = v
		// With a suffix configured, people type the short name and the
		// local record carries it, however the provider capitalises.
		if sfx := o.cfg.UsernameSuffix; sfx != "" && !strings.Contains(typed, "@") &&
			len(v) > len(sfx) && strings.EqualFold(v[len(v)-len(sfx):], sfx) {
			id.Name = v[:len(v)-len(sfx)]
		}
	}
	switch g := claims[o.cfg.GroupsClaim].(type) {
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok && s != "" {
				id.Groups = append(id.Groups, s)
			}
		}
	case string: // some providers send one group as a string
		for _, s := range strings.FieldsFunc(g, func(r rune) bool { return r == ',' || r == ';' || r == ' ' }) {
			id.Groups = append(id.Groups, s)
		}
	}
	return id, nil
}

// mapTokenError turns the provider's answer into a reason the contractor
// can act on.
func (o *OIDC) mapTokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, o.name, err)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	if status >= 500 || status == http.StatusTooManyRequests {
		return fmt.Errorf("%w: %s answered HTTP %d", ErrUnreachable, o.name, status)
	}
	desc := re.ErrorDescription
	if m := aadCode.FindStringSubmatch(desc); m != nil {
		switch m[1] {
		case "50126":
			return ErrBadCredentials
		case "50034":
			return ErrUnknownUser
		case "50057":
			return ErrAccountDisabled
		case "50055":
			return ErrPasswordExpired
		case "50053":
			return ErrAccountLockedOut
		case "50076", "50079", "50074":
			return fmt.Errorf("%w: Entra ID requires its own MFA for this sign-in (AADSTS%s); exclude clinicgate's app registration from that Conditional Access policy, clinicgate asks for the second factor itself", ErrUpstreamRefused, m[1])
		case "65001":
			return fmt.Errorf("%w: the app registration lacks admin consent (AADSTS65001); grant consent in Entra ID", ErrUpstreamRefused)
		case "7000215", "7000222":
			return fmt.Errorf("%w: the client secret is wrong or expired (AADSTS%s)", ErrUpstreamRefused, m[1])
		}
		return fmt.Errorf("%w: %s: %s", ErrUpstreamRefused, o.name, firstLine(desc))
	}
	switch re.ErrorCode {
	case "invalid_grant":
		return ErrBadCredentials
	case "invalid_client":
		return fmt.Errorf("%w: %s refused clinicgate's client id or secret (%s)", ErrUpstreamRefused, o.name, re.ErrorCode)
	case "unauthorized_client":
		return fmt.Errorf("%w: %s does not let this app use the password grant (unauthorized_client); allow the Resource Owner Password grant for it", ErrUpstreamRefused, o.name)
	case "unsupported_grant_type":
		return fmt.Errorf("%w: %s does not allow the password grant for this client; enable it for the app", ErrUpstreamRefused, o.name)
	case "consent_required", "interaction_required":
		return fmt.Errorf("%w: %s wants the user to interact (%s): %s", ErrUpstreamRefused, o.name, re.ErrorCode, firstLine(desc))
	}
	return fmt.Errorf("%w: %s: HTTP %d %s %s", ErrUpstreamRefused, o.name, status, re.ErrorCode, firstLine(desc))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
