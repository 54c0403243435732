package store

import (
	"context"
	"database/sql"
	"time"
)

// AuditForward is where the audit log is forwarded: one syslog collector
// over TLS (RFC 5425). Key is the client certificate's private key, in
// plaintext in memory only; it is sealed in the database.
type AuditForward struct {
	Address    string // host:port
	CAPEM      string // the CA (or CAs) the collector's certificate must chain to
	CertPEM    string // client certificate ("" when none)
	Key        []byte // its private key, PEM
	Checkpoint time.Duration
	Enabled    bool
	Updated    time.Time
}

const auditForwardKeyContext = "audit-forward-key"

// AuditForward returns the forwarding settings, or ErrNotFound when
// forwarding was never set up.
func (s *Store) AuditForward(ctx context.Context) (AuditForward, error) {
	var f AuditForward
	var sealed []byte
	var secs, updated int64
	err := s.q.QueryRowContext(ctx, `SELECT address, ca_pem, cert_pem, key_sealed, checkpoint_seconds, enabled, updated FROM audit_forward WHERE id = 1`).
		Scan(&f.Address, &f.CAPEM, &f.CertPEM, &sealed, &secs, &f.Enabled, &updated)
	if err != nil {
		return f, mapErr(err)
	}
	f.Checkpoint, f.Updated = time.Duration(secs)*time.Second, time.Unix(updated, 0).UTC()
	if len(sealed) > 0 {
		if f.Key, err = s.sealer.Open(sealed, auditForwardKeyContext); err != nil {
			return f, err
		}
	}
	return f, nil
}

// SetAuditForward replaces the forwarding settings (the key is sealed).
func (tx *Tx) SetAuditForward(ctx context.Context, f AuditForward) error {
	var sealed []byte
	if len(f.Key) > 0 {
		var err error
		if sealed, err = tx.s.sealer.Seal(f.Key, auditForwardKeyContext); err != nil {
			return err
		}
	}
	_, err := tx.q.ExecContext(ctx, `INSERT INTO audit_forward (id, address, ca_pem, cert_pem, key_sealed, checkpoint_seconds, enabled, updated) VALUES (1, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET address = excluded.address, ca_pem = excluded.ca_pem, cert_pem = excluded.cert_pem, key_sealed = excluded.key_sealed,
		checkpoint_seconds = excluded.checkpoint_seconds, enabled = excluded.enabled, updated = excluded.updated`,
		f.Address, f.CAPEM, f.CertPEM, sealed, int64(f.Checkpoint/time.Second), f.Enabled, f.Updated.Unix())
	return mapErr(err)
}

// SetAuditForwardEnabled turns forwarding off or back on, keeping its
// settings and its cursor; ErrNotFound when it was never set up.
func (tx *Tx) SetAuditForwardEnabled(ctx context.Context, on bool, now time.Time) error {
	res, err := tx.q.ExecContext(ctx, `UPDATE audit_forward SET enabled = ?, updated = ? WHERE id = 1`, on, now.Unix())
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// AuditForwardState is the forwarder's progress and health.
type AuditForwardState struct {
	// SentSeq: every entry up to it reached the collector.
	SentSeq   int64
	SentAt    time.Time
	Connected bool
	LastError string
	// The last checkpoint (the chain's head) sent.
	CheckpointSeq int64
	CheckpointAt  time.Time
	// StateAt is when the daemon last wrote this row.
	StateAt time.Time
}

// AuditForwardState reads the forwarder's state.
func (s *Store) AuditForwardState(ctx context.Context) (AuditForwardState, error) {
	var st AuditForwardState
	var sent, cp, at sql.NullInt64
	err := s.q.QueryRowContext(ctx, `SELECT sent_seq, sent_at, connected, last_error, checkpoint_seq, checkpoint_at, state_at FROM audit_forward_state WHERE id = 1`).
		Scan(&st.SentSeq, &sent, &st.Connected, &st.LastError, &st.CheckpointSeq, &cp, &at)
	if err == sql.ErrNoRows {
		return st, nil
	}
	if err != nil {
		return st, mapErr(err)
	}
	st.SentAt, st.CheckpointAt, st.StateAt = fromUnixNonZero(sent), fromUnixNonZero(cp), fromUnixNonZero(at)
	return st, nil
}

func fromUnixNonZero(n sql.NullInt64) time.Time {
	if !n.Valid || n.Int64 == 0 {
		return time.Time{}
	}
	return time.Unix(n.Int64, 0).UTC()
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// SetAuditForwardState records the forwarder's state. The cursor never
// moves back, so a late write from a forwarder that was replaced cannot
// make the next one resend what the collector already holds.
func (s *Store) SetAuditForwardState(ctx context.Context, st AuditForwardState) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO audit_forward_state (id, sent_seq, sent_at, connected, last_error, checkpoint_seq, checkpoint_at, state_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET sent_seq = max(sent_seq, excluded.sent_seq), sent_at = excluded.sent_at, connected = excluded.connected,
			last_error = excluded.last_error, checkpoint_seq = excluded.checkpoint_seq, checkpoint_at = excluded.checkpoint_at, state_at = excluded.state_at`,
			st.SentSeq, unixOrZero(st.SentAt), st.Connected, st.LastError, st.CheckpointSeq, unixOrZero(st.CheckpointAt), unixOrZero(st.StateAt))
		return mapErr(err)
	})
}
