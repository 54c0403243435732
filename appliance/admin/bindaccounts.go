package admin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// NewBindAccount is an LDAP service account to add.
type NewBindAccount struct {
	Name     string
	Networks []string       // addresses or CIDR ranges it may bind from
	Secret   secrets.Secret // empty: generate one
}

// AddBindAccount adds an LDAP bind account and returns its secret
// (generated unless given). The name must not be a user's: a bind as that
// name would otherwise be ambiguous.
func (s *Service) AddBindAccount(ctx context.Context, n NewBindAccount) (secrets.Secret, error) {
	if err := CheckName("bind account", n.Name); err != nil {
		return nil, err
	}
	if len(n.Networks) == 0 {
		return nil, invalid("give at least one network the bind account may bind from (--network 10.0.0.5 or a range like 10.0.0.0/24)")
	}
	var nets []netip.Prefix
	for _, a := range n.Networks {
		p, err := ParseAddress(a)
		if err != nil {
			return nil, err
		}
		nets = append(nets, p)
	}
	if _, err := s.Store.UserByName(ctx, n.Name); err == nil {
		return nil, invalid("%q is a user's name; pick another name for the bind account (for example ehr-search)", n.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	secret := n.Secret
	if len(secret) == 0 {
		g, err := GenerateSecret(s.Rand)
		if err != nil {
			return nil, err
		}
		secret = secrets.Secret(g)
	} else if err := checkSecret(secret); err != nil {
		return nil, err
	}
	desc := make([]string, len(nets))
	for i, p := range nets {
		desc[i] = p.String()
	}
	hash, err := s.Hasher.Hash(ctx, secret)
	if err != nil {
		return nil, err
	}
	err = s.change(ctx, audit.Entry{User: n.Name, Reason: "bind_account_add", Detail: fmt.Sprintf("LDAP bind account added; may bind from %s", strings.Join(desc, ", "))}, func(tx *store.Tx) error {
		return tx.AddBindAccount(ctx, store.BindAccount{Name: n.Name, Hash: hash, Networks: nets}, s.Now())
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, invalid("a bind account called %q already exists", n.Name)
	}
	return secret, err
}

// BindAccounts lists the LDAP bind accounts.
func (s *Service) BindAccounts(ctx context.Context) ([]store.BindAccount, error) {
	return s.Store.BindAccounts(ctx)
}

// RemoveBindAccount deletes a bind account.
func (s *Service) RemoveBindAccount(ctx context.Context, name string) error {
	err := s.change(ctx, audit.Entry{User: name, Reason: "bind_account_remove", Detail: "LDAP bind account removed"}, func(tx *store.Tx) error {
		return tx.RemoveBindAccount(ctx, name)
	})
	if errors.Is(err, store.ErrNotFound) {
		return invalid("there is no bind account %q", name)
	}
	return err
}
