package store

import (
	"context"
	"fmt"
	"time"
)

// UserCert is a client certificate registered to a user for EAP-TLS.
type UserCert struct {
	Fingerprint string // SHA-256, upper-case colon-separated hex
	UserID      int64
	UserName    string
	CreatedAt   time.Time
}

// RegisterCert registers a certificate fingerprint to a user.
func (tx *Tx) RegisterCert(ctx context.Context, c UserCert, now time.Time) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO user_certs (fingerprint, user_id, created_at) VALUES (?, ?, ?)`, c.Fingerprint, c.UserID, now.Unix())
	if err != nil {
		return fmt.Errorf("certificate %s: %w", c.Fingerprint, mapErr(err))
	}
	return nil
}

// DeleteCert removes a certificate registration.
func (tx *Tx) DeleteCert(ctx context.Context, fingerprint string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM user_certs WHERE fingerprint = ?`, fingerprint)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// CertOwner returns the id of the user a fingerprint is registered to, or
// ErrNotFound.
func (s *Store) CertOwner(ctx context.Context, fingerprint string) (int64, error) {
	var id int64
	err := s.q.QueryRowContext(ctx, `SELECT user_id FROM user_certs WHERE fingerprint = ?`, fingerprint).Scan(&id)
	return id, mapErr(err)
}

// CertOwnerName is the name of the user a certificate is registered to,
// in a transaction, or ErrNotFound.
func (tx *Tx) CertOwnerName(ctx context.Context, fingerprint string) (string, error) {
	var name string
	err := tx.q.QueryRowContext(ctx, `SELECT u.name FROM user_certs c JOIN users u ON u.id = c.user_id WHERE c.fingerprint = ?`, fingerprint).Scan(&name)
	return name, mapErr(err)
}

// UserCerts lists every registered certificate, by user name.
func (s *Store) UserCerts(ctx context.Context) ([]UserCert, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT c.fingerprint, c.user_id, u.name, c.created_at FROM user_certs c JOIN users u ON u.id = c.user_id ORDER BY u.name, c.fingerprint`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []UserCert
	for rows.Next() {
		var c UserCert
		var at int64
		if err := rows.Scan(&c.Fingerprint, &c.UserID, &c.UserName, &at); err != nil {
			return nil, mapErr(err)
		}
		c.CreatedAt = time.Unix(at, 0).UTC()
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// The kinds of revocation entry.
const (
	RevokeFingerprint = "fingerprint"
	RevokeSerial      = "serial"
)

// Revocation is an entry of the appliance's own certificate revocation
// list.
type Revocation struct {
	Kind      string // RevokeFingerprint or RevokeSerial
	Value     string
	Reason    string
	RevokedAt time.Time
}

// Revoke adds an entry to the revocation list (ErrConflict when it is
// already there).
func (tx *Tx) Revoke(ctx context.Context, r Revocation, now time.Time) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO cert_revocations (kind, value, reason, revoked_at) VALUES (?, ?, ?, ?)`, r.Kind, r.Value, r.Reason, now.Unix())
	if err != nil {
		return fmt.Errorf("revoke %s %s: %w", r.Kind, r.Value, mapErr(err))
	}
	return nil
}

// Revoked returns the revocation entry for a fingerprint or a serial
// number (either may be empty), or ErrNotFound.
func (s *Store) Revoked(ctx context.Context, fingerprint, serial string) (Revocation, error) {
	var r Revocation
	var at int64
	err := s.q.QueryRowContext(ctx, `SELECT kind, value, reason, revoked_at FROM cert_revocations
		WHERE (kind = 'fingerprint' AND value = ? AND ? != '') OR (kind = 'serial' AND value = ? AND ? != '') LIMIT 1`,
		fingerprint, fingerprint, serial, serial).Scan(&r.Kind, &r.Value, &r.Reason, &at)
	if err != nil {
		return Revocation{}, mapErr(err)
	}
	r.RevokedAt = time.Unix(at, 0).UTC()
	return r, nil
}

// Revocations lists the revocation list, newest first.
func (s *Store) Revocations(ctx context.Context) ([]Revocation, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT kind, value, reason, revoked_at FROM cert_revocations ORDER BY revoked_at DESC, value`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var at int64
		if err := rows.Scan(&r.Kind, &r.Value, &r.Reason, &at); err != nil {
			return nil, mapErr(err)
		}
		r.RevokedAt = time.Unix(at, 0).UTC()
		out = append(out, r)
	}
	return out, mapErr(rows.Err())
}
