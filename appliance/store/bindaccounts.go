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
	Name string
	// Hash is the secret's argon2id hash (passwd). Secret is set instead
	// only on a row stored before migration 011 that has not been
	// hashed yet (HashBindSecrets); AddBindAccount takes Hash.
	Hash      string
	Secret    secrets.Secret
	Networks  []netip.Prefix // where it may bind from
	CreatedAt time.Time
}

func bindSecretContext(name string) string { return "bind-account:" + strings.ToLower(name) }

// AddBindAccount stores an account with its secret's hash.
func (tx *Tx) AddBindAccount(ctx context.Context, b BindAccount, now time.Time) error {
	if b.Hash == "" {
		return fmt.Errorf("bind account %q: no secret hash", b.Name)
	}
	nets := make([]string, len(b.Networks))
	for i, p := range b.Networks {
		nets[i] = p.Masked().String()
	}
	_, err := tx.q.ExecContext(ctx, `INSERT INTO bind_accounts (name, secret, secret_hash, networks, created_at) VALUES (?, X'', ?, ?, ?)`,
		b.Name, b.Hash, strings.Join(nets, ","), now.Unix())
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

// BindAccounts lists the accounts by name.
func (s *Store) BindAccounts(ctx context.Context) ([]BindAccount, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, secret, secret_hash, networks, created_at FROM bind_accounts ORDER BY name`)
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
	return s.scanBindAccount(s.q.QueryRowContext(ctx, `SELECT name, secret, secret_hash, networks, created_at FROM bind_accounts WHERE name = ?`, name))
}

func (s *Store) scanBindAccount(sc interface{ Scan(...any) error }) (BindAccount, error) {
	var b BindAccount
	var sealed []byte
	var nets string
	var created int64
	if err := sc.Scan(&b.Name, &sealed, &b.Hash, &nets, &created); err != nil {
		return BindAccount{}, mapErr(err)
	}
	if b.Hash == "" && len(sealed) > 0 {
		plain, err := s.sealer.Open(sealed, bindSecretContext(b.Name))
		if err != nil {
			return BindAccount{}, fmt.Errorf("bind account %q: secret: %w", b.Name, err)
		}
		b.Secret = plain
	}
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

// SetBindAccountHash stores a legacy row's hash and drops its sealed
// secret.
func (tx *Tx) SetBindAccountHash(ctx context.Context, name, hash string) error {
	res, err := tx.q.ExecContext(ctx, `UPDATE bind_accounts SET secret_hash = ?, secret = X'' WHERE name = ?`, hash, name)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// HashBindSecrets replaces every bind-account secret still sealed (stored
// before migration 011) by its hash, computed by hash. It returns how
// many it replaced.
func (s *Store) HashBindSecrets(ctx context.Context, hash func(ctx context.Context, secret []byte) (string, error)) (int, error) {
	all, err := s.BindAccounts(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range all {
		if b.Hash != "" || len(b.Secret) == 0 {
			continue
		}
		h, err := hash(ctx, b.Secret)
		if err != nil {
			return n, err
		}
		if err := s.WithTx(ctx, func(tx *Tx) error { return tx.SetBindAccountHash(ctx, b.Name, h) }); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
