package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	conn, err := upstream.Build(u)
	if err != nil {
		return nil, invalid("%v", err)
	}
	var warnings []string
	if w, ok := conn.(upstream.Warner); ok {
		warnings = w.Warnings()
	}
	if c, ok := conn.(interface{ Close() }); ok {
		c.Close()
	}
	err = s.change(ctx, audit.Entry{Reason: "upstream_add", Detail: fmt.Sprintf("%s upstream %s added: %s", n.Kind, n.Name, n.Config)}, func(tx *store.Tx) error {
		return tx.CreateUpstream(ctx, u, s.Now())
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, invalid("an upstream named %q already exists", n.Name)
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
