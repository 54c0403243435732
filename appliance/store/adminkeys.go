package store

import (
	"context"
	"fmt"
	"time"
)

// AdminKey is an SSH public key allowed to open the console.
type AdminKey struct {
	Name        string
	PublicKey   string // authorized_keys form
	Fingerprint string // SHA256:...
	CreatedAt   time.Time
}

// AddAdminKey stores a key.
func (tx *Tx) AddAdminKey(ctx context.Context, k AdminKey, now time.Time) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO admin_keys (name, public_key, fingerprint, created_at) VALUES (?, ?, ?, ?)`, k.Name, k.PublicKey, k.Fingerprint, now.Unix())
	if err != nil {
		return fmt.Errorf("admin key %q: %w", k.Name, mapErr(err))
	}
	return nil
}

// RemoveAdminKey deletes a key by name.
func (tx *Tx) RemoveAdminKey(ctx context.Context, name string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM admin_keys WHERE name = ?`, name)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// AdminKeys lists the keys by name.
func (s *Store) AdminKeys(ctx context.Context) ([]AdminKey, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, public_key, fingerprint, created_at FROM admin_keys ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []AdminKey
	for rows.Next() {
		var k AdminKey
		var created int64
		if err := rows.Scan(&k.Name, &k.PublicKey, &k.Fingerprint, &created); err != nil {
			return nil, mapErr(err)
		}
		k.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, k)
	}
	return out, mapErr(rows.Err())
}

// AdminKeyByFingerprint finds a key.
func (s *Store) AdminKeyByFingerprint(ctx context.Context, fp string) (AdminKey, error) {
	var k AdminKey
	var created int64
	err := s.q.QueryRowContext(ctx, `SELECT name, public_key, fingerprint, created_at FROM admin_keys WHERE fingerprint = ?`, fp).Scan(&k.Name, &k.PublicKey, &k.Fingerprint, &created)
	if err != nil {
		return AdminKey{}, mapErr(err)
	}
	k.CreatedAt = time.Unix(created, 0).UTC()
	return k, nil
}
