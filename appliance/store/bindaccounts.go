package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// BindAccount is an LDAP service account: an EHR binds as it to search
// the directory. It never logs a person in.
type BindAccount struct {
	Name      string
	Secret    secrets.Secret
	Networks  []netip.Prefix // where it may bind from
	CreatedAt time.Time
}

func bindSecretContext(name string) string { return "bind-account:" + strings.ToLower(name) }

// AddBindAccount stores an account, sealing its secret.
func (tx *Tx) AddBindAccount(ctx context.Context, b BindAccount, now time.Time) error {
	sealed, err := tx.s.sealer.Seal(b.Secret, bindSecretContext(b.Name))
	if err != nil {
		return fmt.Errorf("bind account %q: %w", b.Name, err)
	}
	nets := make([]string, len(b.Networks))
	for i, p := range b.Networks {
		nets[i] = p.Masked().String()
	}
	_, err = tx.q.ExecContext(ctx, `INSERT INTO bind_accounts (name, secret, networks, created_at) VALUES (?, ?, ?, ?)`,
		b.Name, sealed, strings.Join(nets, ","), now.Unix())
	if err != nil {
		return fmt.Errorf("bind account %q: %w", b.Name, mapErr(err))
	}
	return nil
}

// RemoveBindAccount deletes an account by name.
func (tx *Tx) RemoveBindAccount(ctx context.Context, name string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM bind_accounts WHERE name = ?`, name)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// BindAccounts lists the accounts by name, secrets unsealed.
func (s *Store) BindAccounts(ctx context.Context) ([]BindAccount, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, secret, networks, created_at FROM bind_accounts ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []BindAccount
	for rows.Next() {
		b, err := s.scanBindAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, mapErr(rows.Err())
}

// BindAccountByName finds one account or ErrNotFound.
func (s *Store) BindAccountByName(ctx context.Context, name string) (BindAccount, error) {
	return s.scanBindAccount(s.q.QueryRowContext(ctx, `SELECT name, secret, networks, created_at FROM bind_accounts WHERE name = ?`, name))
}

func (s *Store) scanBindAccount(sc interface{ Scan(...any) error }) (BindAccount, error) {
	var b BindAccount
	var sealed []byte
	var nets string
	var created int64
	if err := sc.Scan(&b.Name, &sealed, &nets, &created); err != nil {
		return BindAccount{}, mapErr(err)
	}
	plain, err := s.sealer.Open(sealed, bindSecretContext(b.Name))
	if err != nil {
		return BindAccount{}, fmt.Errorf("bind account %q: secret: %w", b.Name, err)
	}
	b.Secret = plain
	for _, n := range strings.Split(nets, ",") {
		if n == "" {
			continue
		}
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return BindAccount{}, fmt.Errorf("bind account %q: stored network %q: %w", b.Name, n, err)
		}
		b.Networks = append(b.Networks, p)
	}
	b.CreatedAt = time.Unix(created, 0).UTC()
	return b, nil
}
