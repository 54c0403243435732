package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// MFAProvider is a configured push MFA provider (see
// migrations/014_mfa_providers.sql). Secret is plaintext here, sealed at
// rest.
type MFAProvider struct {
	Name     string
	Kind     string // duo or okta
	Settings string // the kind's JSON
	Secret   secrets.Secret
	Version  int64

	CreatedAt, UpdatedAt time.Time
}

func mfaProviderContext(name string) string { return "mfa-provider-secret:" + strings.ToLower(name) }

const mfaProviderCols = `name, kind, settings, secret, version, created_at, updated_at`

func (s *Store) scanMFAProvider(sc interface{ Scan(...any) error }) (MFAProvider, error) {
	var p MFAProvider
	var sealed []byte
	var created, updated int64
	if err := sc.Scan(&p.Name, &p.Kind, &p.Settings, &sealed, &p.Version, &created, &updated); err != nil {
		return MFAProvider{}, mapErr(err)
	}
	if len(sealed) > 0 {
		plain, err := s.sealer.Open(sealed, mfaProviderContext(p.Name))
		if err != nil {
			return MFAProvider{}, fmt.Errorf("mfa provider %s: secret: %w", p.Name, err)
		}
		p.Secret = plain
	}
	p.CreatedAt, p.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return p, nil
}

// MFAProviders lists the configured providers by name.
func (s *Store) MFAProviders(ctx context.Context) ([]MFAProvider, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+mfaProviderCols+` FROM mfa_providers ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []MFAProvider
	for rows.Next() {
		p, err := s.scanMFAProvider(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, mapErr(rows.Err())
}

// MFAProviderByName reads one provider (ErrNotFound if none has the name).
func (s *Store) MFAProviderByName(ctx context.Context, name string) (MFAProvider, error) {
	return s.scanMFAProvider(s.q.QueryRowContext(ctx, `SELECT `+mfaProviderCols+` FROM mfa_providers WHERE name = ?`, name))
}

// MFAProviderVersion is a provider's version, without opening its secret
// (ErrNotFound if none has the name).
func (s *Store) MFAProviderVersion(ctx context.Context, name string) (int64, error) {
	var v int64
	err := s.q.QueryRowContext(ctx, `SELECT version FROM mfa_providers WHERE name = ?`, name).Scan(&v)
	return v, mapErr(err)
}

// PutMFAProvider creates or replaces a provider (nil Secret keeps the
// stored one) and bumps its version.
func (tx *Tx) PutMFAProvider(ctx context.Context, p MFAProvider, now time.Time) error {
	var sealed []byte
	if len(p.Secret) > 0 {
		var err error
		if sealed, err = tx.s.sealer.Seal(p.Secret, mfaProviderContext(p.Name)); err != nil {
			return err
		}
	}
	_, err := tx.q.ExecContext(ctx, `INSERT INTO mfa_providers (name, kind, settings, secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, settings = excluded.settings, secret = COALESCE(excluded.secret, mfa_providers.secret),
			version = mfa_providers.version + 1, updated_at = excluded.updated_at`,
		p.Name, p.Kind, p.Settings, sealed, now.Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("mfa provider %s: %w", p.Name, mapErr(err))
	}
	return nil
}

// DeleteMFAProvider removes a provider.
func (tx *Tx) DeleteMFAProvider(ctx context.Context, name string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM mfa_providers WHERE name = ?`, name)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
