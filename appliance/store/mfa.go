package store

import (
	"context"
	"strconv"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// TOTP is a user's TOTP enrolment.
type TOTP struct {
	UserID    int64
	Seed      secrets.Secret
	Digits    int
	Period    int // seconds
	Algorithm string
	LastStep  int64 // the last time step accepted (replay guard)
	CreatedAt time.Time
}

func totpContext(userID int64) string { return "totp-seed:" + strconv.FormatInt(userID, 10) }

// TOTP returns a user's enrolment or ErrNotFound.
func (s *Store) TOTP(ctx context.Context, userID int64) (TOTP, error) {
	var t TOTP
	var sealed []byte
	var created int64
	err := s.q.QueryRowContext(ctx, `SELECT user_id, seed, digits, period, algorithm, last_step, created_at FROM mfa_totp WHERE user_id = ?`, userID).
		Scan(&t.UserID, &sealed, &t.Digits, &t.Period, &t.Algorithm, &t.LastStep, &created)
	if err != nil {
		return TOTP{}, mapErr(err)
	}
	seed, err := s.sealer.Open(sealed, totpContext(userID))
	if err != nil {
		return TOTP{}, err
	}
	t.Seed, t.CreatedAt = seed, time.Unix(created, 0).UTC()
	return t, nil
}

// SetTOTP stores (or replaces) a user's enrolment, sealing the seed.
func (tx *Tx) SetTOTP(ctx context.Context, t TOTP, now time.Time) error {
	sealed, err := tx.s.sealer.Seal(t.Seed, totpContext(t.UserID))
	if err != nil {
		return err
	}
	_, err = tx.q.ExecContext(ctx, `INSERT INTO mfa_totp (user_id, seed, digits, period, algorithm, last_step, created_at) VALUES (?, ?, ?, ?, ?, 0, ?)
		ON CONFLICT (user_id) DO UPDATE SET seed = excluded.seed, digits = excluded.digits, period = excluded.period, algorithm = excluded.algorithm, last_step = 0, created_at = excluded.created_at`,
		t.UserID, sealed, t.Digits, t.Period, t.Algorithm, now.Unix())
	return mapErr(err)
}

// DeleteTOTP removes a user's enrolment.
func (tx *Tx) DeleteTOTP(ctx context.Context, userID int64) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM mfa_totp WHERE user_id = ?`, userID)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ConsumeTOTPStep records that the code of time step step was used. It
// reports false when that step or a later one was already used: the code
// is a replay. The check and the write are one statement, so two requests
// racing with the same code cannot both win.
func (s *Store) ConsumeTOTPStep(ctx context.Context, userID, step int64) (bool, error) {
	var ok bool
	err := s.WithTx(ctx, func(tx *Tx) error {
		res, err := tx.q.ExecContext(ctx, `UPDATE mfa_totp SET last_step = ? WHERE user_id = ? AND last_step < ?`, step, userID, step)
		if err != nil {
			return mapErr(err)
		}
		n, _ := res.RowsAffected()
		ok = n == 1
		return nil
	})
	return ok, err
}
