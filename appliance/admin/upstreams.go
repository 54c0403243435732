package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// NewUpstream describes an identity source to add.
type NewUpstream struct {
	Name   string
	Kind   string // radius or ldap
	Config string // the kind's JSON settings
	Secret secrets.Secret
}

// AddUpstream validates the settings (by building the connector, without
// network traffic) and stores them. It returns the connector's warnings.
func (s *Service) AddUpstream(ctx context.Context, n NewUpstream) ([]string, error) {
	if err := CheckName("upstream", n.Name); err != nil {
		return nil, err
	}
	if strings.EqualFold(n.Name, "local") {
		return nil, invalid("the name \"local\" is reserved for users kept on the appliance")
	}
	u := store.Upstream{Name: n.Name, Kind: n.Kind, Config: n.Config, Secret: n.Secret}
	warnings, err := UpstreamWarnings(u)
	if err != nil {
		return nil, invalid("%v", err)
	}
	err = s.change(ctx, audit.Entry{Reason: "upstream_add", Detail: fmt.Sprintf("%s upstream %s added: %s", n.Kind, n.Name, n.Config)}, func(tx *store.Tx) error {
		return tx.CreateUpstream(ctx, u, s.Now())
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, invalid("an upstream named %q already exists", n.Name)
	}
	return warnings, err
}

// UpstreamEdit changes an upstream in place.
type UpstreamEdit struct {
	Config string         // the kind's JSON settings, whole
	Secret secrets.Secret // nil: keep the stored one
	// Version must match the stored upstream (a lost update is refused).
	Version int64
}

// EditUpstream replaces an upstream's settings (validated by building the
// connector, as AddUpstream does) and, if given, its secret. Passwords the
// old settings verified for failmode cached are forgotten: they may have
// come from another directory. The running daemon uses the new settings
// within a second. It returns the connector's warnings.
func (s *Service) EditUpstream(ctx context.Context, name string, e UpstreamEdit) ([]string, error) {
	old, err := s.Store.UpstreamByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid("there is no upstream %q", name)
	}
	if err != nil {
		return nil, err
	}
	u := old
	u.Config = strings.TrimSpace(e.Config)
	if e.Secret != nil {
		u.Secret = e.Secret
	}
	if e.Version != 0 {
		u.Version = e.Version
	}
	warnings, err := UpstreamWarnings(u)
	if err != nil {
		return nil, invalid("%v", err)
	}
	detail := fmt.Sprintf("%s upstream %s changed: %s", u.Kind, name, u.Config)
	if e.Secret != nil {
		detail += " (secret replaced)"
	}
	err = s.change(ctx, audit.Entry{Reason: "upstream_edit", Detail: detail}, func(tx *store.Tx) error {
		return tx.UpdateUpstream(ctx, u, s.Now())
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, invalid("someone else changed upstream %q meanwhile; open it again to see their change", name)
	case errors.Is(err, store.ErrNotFound):
		return nil, invalid("there is no upstream %q", name)
	}
	return warnings, err
}

// Upstreams lists the configured upstreams (secrets included: callers must
// not print them).
func (s *Service) Upstreams(ctx context.Context) ([]store.Upstream, error) {
	return s.Store.Upstreams(ctx)
}

// RemoveUpstream deletes an upstream no client uses.
func (s *Service) RemoveUpstream(ctx context.Context, name string) error {
	cs, err := s.Store.Clients(ctx, "")
	if err != nil {
		return err
	}
	var users []string
	for _, c := range cs {
		if strings.EqualFold(c.Policy.Upstream, name) {
			users = append(users, c.Name)
		}
	}
	if len(users) > 0 {
		return invalid("clients %v still use upstream %q; point them elsewhere first (clinicgate client set NAME --upstream local)", users, name)
	}
	err = s.change(ctx, audit.Entry{Reason: "upstream_remove", Detail: "upstream " + name + " removed"}, func(tx *store.Tx) error {
		return tx.DeleteUpstream(ctx, name)
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("there is no upstream %q", name)
	}
	return err
}

// SetSyncToken stores the credential directory sync uses (an Okta API
// token), sealed.
func (s *Service) SetSyncToken(ctx context.Context, name string, token secrets.Secret) error {
	if len(token) < 8 || strings.ContainsAny(string(token), " \t\r\n") {
		return invalid("the token looks wrong (too short, or has spaces or line breaks)")
	}
	err := s.change(ctx, audit.Entry{Reason: "upstream_sync_token", Detail: "sync token of upstream " + name + " replaced"}, func(tx *store.Tx) error {
		return tx.SetUpstreamSyncSecret(ctx, name, token)
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("there is no upstream %q", name)
	}
	return err
}

// UpstreamCheck is what a check of an upstream found, step by step, in
// the contractor's words: the settings, the connection (where the kind has
// one), the password.
type UpstreamCheck struct {
	Upstream, Kind string
	Steps          []CheckStep
	// Warnings are settings that work but are weak (no
	// Message-Authenticator, say).
	Warnings []string
	// OK: the password was accepted.
	OK bool
}

// CheckStep is one step of a check: what was tried, and what came of it
// ("" for a step that only says something).
type CheckStep struct {
	What   string
	Result string
	// Hint says what to look at when the step failed.
	Hint string
	OK   bool
}

// Lines lays a check out as text, one step and its result a line, the
// warnings under the settings step: the command line prints them.
func (c UpstreamCheck) Lines() []string {
	var out []string
	for i, st := range c.Steps {
		out = append(out, fmt.Sprintf("%d. %s", i+1, st.What))
		if st.Result != "" {
			out = append(out, "   "+st.Result)
		}
		if st.Hint != "" {
			out = append(out, "   "+st.Hint)
		}
		if i == 0 && st.OK {
			for _, w := range c.Warnings {
				out = append(out, "   warning: "+w)
			}
		}
	}
	return out
}

// TestUpstream performs a real login check against an upstream. A check
// that ran returns its steps, and an error too when it did not succeed,
// saying which part failed; a check that could not start (no such
// upstream) returns only the error.
func (s *Service) TestUpstream(ctx context.Context, name, user string, pw secrets.Secret) (UpstreamCheck, error) {
	u, err := s.Store.UpstreamByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return UpstreamCheck{}, fmt.Errorf("there is no upstream %q (see 'clinicgate upstream list')", name)
	}
	if err != nil {
		return UpstreamCheck{}, err
	}
	c := UpstreamCheck{Upstream: u.Name, Kind: u.Kind}
	step := func(what string) *CheckStep {
		c.Steps = append(c.Steps, CheckStep{What: what})
		return &c.Steps[len(c.Steps)-1]
	}
	st := step(fmt.Sprintf("settings of %s upstream %s: %s", u.Kind, u.Name, u.Config))
	conn, err := upstream.Build(u)
	if err != nil {
		st.Result = fmt.Sprintf("FAILED: %v", err)
		return c, errors.New("the settings are not usable; fix them and add the upstream again")
	}
	if cl, ok := conn.(interface{ Close() }); ok {
		defer cl.Close()
	}
	st.Result, st.OK = "ok", true
	if wr, ok := conn.(upstream.Warner); ok {
		c.Warnings = wr.Warnings()
	}
	if p, ok := conn.(upstream.Prober); ok {
		what := "connecting to the server"
		if u.Kind == upstream.KindLDAP {
			what += " and signing in with the service account"
		} else if u.Kind == upstream.KindOIDC {
			what += " and reading its discovery document"
		}
		st = step(what)
		if err := p.Probe(ctx); err != nil {
			st.Result = fmt.Sprintf("FAILED: %v", err)
			return c, errors.New("the server could not be reached or refused the service account")
		}
		st.Result, st.OK = "ok", true
	} else {
		st = step("(this kind has no separate connection check)")
		st.OK = true
	}
	st = step("checking the password of " + user)
	start := time.Now()
	id, err := conn.Verify(ctx, user, pw)
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case err == nil:
		groups := strings.Join(id.Groups, ", ")
		if groups == "" {
			groups = "-"
		}
		st.Result, st.OK, c.OK = fmt.Sprintf("accepted in %v as %s; groups: %s", took, id.Name, groups), true, true
		return c, nil
	case errors.Is(err, upstream.ErrBadCredentials):
		st.Result = fmt.Sprintf("REFUSED in %v: wrong password", took)
		if u.Kind == upstream.KindRADIUS {
			st.Result += " (a RADIUS server does not say whether the user exists)"
		}
	case errors.Is(err, upstream.ErrUnknownUser):
		st.Result = fmt.Sprintf("REFUSED in %v: no such user was found (check base DN, user attribute and filter)", took)
	case errors.Is(err, upstream.ErrUnreachable):
		st.Result = fmt.Sprintf("UNREACHABLE after %v: %v", took, err)
		st.Hint = "Check the address and port, the firewall, the shared secret (RADIUS) and the CA file (TLS)."
	default:
		st.Result = fmt.Sprintf("REFUSED in %v: %v", took, err)
	}
	return c, errors.New("the test login did not succeed")
}
