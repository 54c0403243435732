package store

import (
	"context"
	"crypto/subtle"
	"errors"
	"strconv"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// NTHashSize is the length of an NT hash (MD4).
const NTHashSize = 16

func ntHashContext(userID int64) string { return "nt-hash:" + strconv.FormatInt(userID, 10) }

// NTHash returns the user's kept NT hash or ErrNotFound.
func (s *Store) NTHash(ctx context.Context, userID int64) (secrets.Secret, error) {
	var sealed []byte
	err := s.q.QueryRowContext(ctx, `SELECT hash FROM nt_hashes WHERE user_id = ?`, userID).Scan(&sealed)
	if err != nil {
		return nil, mapErr(err)
	}
	h, err := s.sealer.Open(sealed, ntHashContext(userID))
	if err != nil {
		return nil, err
	}
	if len(h) != NTHashSize {
		return nil, errors.New("stored NT hash has the wrong length")
	}
	return h, nil
}

// KeepNTHash stores the user's NT hash, sealed, unless the one kept is
// already the same; it reports whether it wrote.
func (s *Store) KeepNTHash(ctx context.Context, userID int64, hash []byte, now time.Time) (bool, error) {
	if len(hash) != NTHashSize {
		return false, errors.New("an NT hash is 16 bytes")
	}
	// Read first, outside the write lock: the common case (the same
	// password as last time) writes nothing.
	if old, err := s.NTHash(ctx, userID); err == nil && subtle.ConstantTimeCompare(old, hash) == 1 {
		return false, nil
	}
	err := s.WithTx(ctx, func(tx *Tx) error { return tx.SetNTHash(ctx, userID, hash, now) })
	return err == nil, err
}

// SetNTHash stores (or replaces) the user's NT hash, sealed.
func (tx *Tx) SetNTHash(ctx context.Context, userID int64, hash []byte, now time.Time) error {
	if len(hash) != NTHashSize {
		return errors.New("an NT hash is 16 bytes")
	}
	sealed, err := tx.s.sealer.Seal(hash, ntHashContext(userID))
	if err != nil {
		return err
	}
	_, err = tx.q.ExecContext(ctx, `INSERT INTO nt_hashes (user_id, hash, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at`, userID, sealed, now.Unix())
	return mapErr(err)
}

// DeleteNTHash forgets the user's NT hash (no error when none is kept).
func (s *Store) DeleteNTHash(ctx context.Context, userID int64) error {
	return s.WithTx(ctx, func(tx *Tx) error { return tx.DeleteNTHash(ctx, userID) })
}

// DeleteNTHash forgets the user's NT hash inside tx.
func (tx *Tx) DeleteNTHash(ctx context.Context, userID int64) error {
	_, err := tx.q.ExecContext(ctx, `DELETE FROM nt_hashes WHERE user_id = ?`, userID)
	return mapErr(err)
}

// DeleteAllNTHashes forgets every kept NT hash and says how many.
func (tx *Tx) DeleteAllNTHashes(ctx context.Context) (int64, error) {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM nt_hashes`)
	if err != nil {
		return 0, mapErr(err)
	}
	return res.RowsAffected()
}

// CountNTHashes reports how many NT hashes are kept.
func (s *Store) CountNTHashes(ctx context.Context) (int, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM nt_hashes`).Scan(&n)
	return n, mapErr(err)
}
