package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// Upstream is a configured identity source. Config is the kind's JSON
// settings; Secret its sealed credential (bind password, shared secret,
// client secret), plaintext here.
type Upstream struct {
	ID        int64
	Name      string
	Kind      string // "radius", "ldap", "oidc"
	Config    string
	Secret    secrets.Secret
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

func upstreamContext(name string) string { return "upstream-secret:" + strings.ToLower(name) }

const upstreamCols = `id, name, kind, config, secret, version, created_at, updated_at`

func (s *Store) scanUpstream(sc interface{ Scan(...any) error }) (Upstream, error) {
	var u Upstream
	var sealed []byte
	var created, updated int64
	if err := sc.Scan(&u.ID, &u.Name, &u.Kind, &u.Config, &sealed, &u.Version, &created, &updated); err != nil {
		return Upstream{}, mapErr(err)
	}
	if len(sealed) > 0 {
		plain, err := s.sealer.Open(sealed, upstreamContext(u.Name))
		if err != nil {
			return Upstream{}, fmt.Errorf("upstream %q: secret: %w", u.Name, err)
		}
		u.Secret = plain
	}
	u.CreatedAt, u.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return u, nil
}

// Upstreams lists every upstream by name.
func (s *Store) Upstreams(ctx context.Context) ([]Upstream, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+upstreamCols+` FROM upstreams ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Upstream
	for rows.Next() {
		u, err := s.scanUpstream(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, mapErr(rows.Err())
}

// UpstreamByName finds an upstream, ignoring case.
func (s *Store) UpstreamByName(ctx context.Context, name string) (Upstream, error) {
	return s.scanUpstream(s.q.QueryRowContext(ctx, `SELECT `+upstreamCols+` FROM upstreams WHERE name = ?`, name))
}

// UpstreamVersion returns a value that changes whenever the named upstream
// row changes (or ErrNotFound).
func (s *Store) UpstreamVersion(ctx context.Context, name string) (int64, error) {
	var v int64
	err := s.q.QueryRowContext(ctx, `SELECT version * 1000003 + id FROM upstreams WHERE name = ?`, name).Scan(&v)
	return v, mapErr(err)
}

// CreateUpstream inserts u, sealing its secret.
func (tx *Tx) CreateUpstream(ctx context.Context, u Upstream, now time.Time) error {
	var sealed []byte
	if len(u.Secret) > 0 {
		var err error
		if sealed, err = tx.s.sealer.Seal(u.Secret, upstreamContext(u.Name)); err != nil {
			return err
		}
	}
	_, err := tx.q.ExecContext(ctx, `INSERT INTO upstreams (name, kind, config, secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		u.Name, u.Kind, u.Config, sealed, now.Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("upstream %q: %w", u.Name, mapErr(err))
	}
	return nil
}

// UpstreamByName finds one upstream inside a transaction.
func (tx *Tx) UpstreamByName(ctx context.Context, name string) (Upstream, error) {
	return tx.s.scanUpstream(tx.q.QueryRowContext(ctx, `SELECT `+upstreamCols+` FROM upstreams WHERE name = ?`, name))
}

// UpdateUpstream replaces u's settings and secret (sealed) if its version
// is still the stored one: ErrConflict if someone changed it meanwhile,
// ErrNotFound if it is gone.
func (tx *Tx) UpdateUpstream(ctx context.Context, u Upstream, now time.Time) error {
	var sealed []byte
	if len(u.Secret) > 0 {
		var err error
		if sealed, err = tx.s.sealer.Seal(u.Secret, upstreamContext(u.Name)); err != nil {
			return err
		}
	}
	res, err := tx.q.ExecContext(ctx, `UPDATE upstreams SET config = ?, secret = ?, version = version + 1, updated_at = ? WHERE name = ? AND version = ?`,
		u.Config, sealed, now.Unix(), u.Name, u.Version)
	if err != nil {
		return fmt.Errorf("upstream %q: %w", u.Name, mapErr(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := tx.UpstreamByName(ctx, u.Name); err != nil {
			return err
		}
		return ErrConflict
	}
	// Passwords verified under the old settings may be another
	// directory's: failmode cached must not accept them.
	_, err = tx.q.ExecContext(ctx, `DELETE FROM cached_verifiers WHERE upstream = ? COLLATE NOCASE`, u.Name)
	return mapErr(err)
}

// DeleteUpstream removes an upstream by name.
func (tx *Tx) DeleteUpstream(ctx context.Context, name string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM upstreams WHERE name = ?`, name)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	_, err = tx.q.ExecContext(ctx, `DELETE FROM cached_verifiers WHERE upstream = ? COLLATE NOCASE`, name)
	return mapErr(err)
}

// ---- cached verifiers

// CachedVerifier is a slow salted hash of a password an upstream confirmed,
// kept for the "cached" failmode.
type CachedVerifier struct {
	UserID     int64
	Upstream   string
	Hash       string
	Groups     []string
	VerifiedAt time.Time
}

// PutCachedVerifier stores (or refreshes) a verifier.
func (s *Store) PutCachedVerifier(ctx context.Context, v CachedVerifier) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO cached_verifiers (user_id, upstream, hash, groups, verified_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (user_id, upstream) DO UPDATE SET hash = excluded.hash, groups = excluded.groups, verified_at = excluded.verified_at`,
			v.UserID, strings.ToLower(v.Upstream), v.Hash, strings.Join(v.Groups, "\n"), v.VerifiedAt.Unix())
		return mapErr(err)
	})
}

// CachedVerifierFor returns the user's verifier for an upstream.
func (s *Store) CachedVerifierFor(ctx context.Context, userID int64, upstream string) (CachedVerifier, error) {
	v := CachedVerifier{UserID: userID, Upstream: upstream}
	var groups string
	var at int64
	err := s.q.QueryRowContext(ctx, `SELECT hash, groups, verified_at FROM cached_verifiers WHERE user_id = ? AND upstream = ?`, userID, strings.ToLower(upstream)).
		Scan(&v.Hash, &groups, &at)
	if err != nil {
		return CachedVerifier{}, mapErr(err)
	}
	if groups != "" {
		v.Groups = strings.Split(groups, "\n")
	}
	v.VerifiedAt = time.Unix(at, 0).UTC()
	return v, nil
}

// DeleteCachedVerifiers forgets a user's verifiers (all upstreams when
// upstream is "").
func (s *Store) DeleteCachedVerifiers(ctx context.Context, userID int64, upstream string) error {
	return s.WithTx(ctx, func(tx *Tx) error { return tx.DeleteCachedVerifiers(ctx, userID, upstream) })
}

// DeleteCachedVerifiers forgets a user's verifiers inside tx.
func (tx *Tx) DeleteCachedVerifiers(ctx context.Context, userID int64, upstream string) error {
	_, err := tx.q.ExecContext(ctx, `DELETE FROM cached_verifiers WHERE user_id = ? AND (? = '' OR upstream = ?)`, userID, strings.ToLower(upstream), strings.ToLower(upstream))
	return mapErr(err)
}

// CountCachedVerifiers reports how many verifiers an upstream has.
func (s *Store) CountCachedVerifiers(ctx context.Context, upstream string) (int, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM cached_verifiers WHERE upstream = ?`, strings.ToLower(upstream)).Scan(&n)
	return n, mapErr(err)
}
