package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// MDMSource is one configured device management service (see
// migrations/008_mdm_sources.sql). Name is its kind: intune, jamf or
// google. Secret is plaintext here, sealed at rest.
type MDMSource struct {
	Name     string
	Settings string // the kind's JSON
	Secret   secrets.Secret
	Interval time.Duration
	Enabled  bool
	Version  int64

	LastAttemptAt time.Time
	LastSuccessAt time.Time
	LastError     string
	DeviceCount   int
	// SyncRequest counts "sync now" requests; SyncServed is the last one
	// a sync began after, SyncDone the last one a finished sync served.
	SyncRequest, SyncServed, SyncDone int64

	CreatedAt, UpdatedAt time.Time
}

func mdmContext(name string) string { return "mdm-secret:" + strings.ToLower(name) }

const mdmCols = `name, settings, secret, interval_s, enabled, version, last_attempt_at, last_success_at, last_error, device_count, sync_request, sync_served, sync_done, created_at, updated_at`

func (s *Store) scanMDM(sc interface{ Scan(...any) error }) (MDMSource, error) {
	var m MDMSource
	var sealed []byte
	var interval, created, updated int64
	var attempt, success sql.NullInt64
	if err := sc.Scan(&m.Name, &m.Settings, &sealed, &interval, &m.Enabled, &m.Version, &attempt, &success, &m.LastError, &m.DeviceCount,
		&m.SyncRequest, &m.SyncServed, &m.SyncDone, &created, &updated); err != nil {
		return MDMSource{}, mapErr(err)
	}
	if len(sealed) > 0 {
		plain, err := s.sealer.Open(sealed, mdmContext(m.Name))
		if err != nil {
			return MDMSource{}, fmt.Errorf("mdm source %s: secret: %w", m.Name, err)
		}
		m.Secret = plain
	}
	m.Interval = time.Duration(interval) * time.Second
	m.LastAttemptAt, m.LastSuccessAt = fromUnix(attempt), fromUnix(success)
	m.CreatedAt, m.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
	return m, nil
}

// MDMSources lists the configured MDM sources by name.
func (s *Store) MDMSources(ctx context.Context) ([]MDMSource, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+mdmCols+` FROM mdm_sources ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []MDMSource
	for rows.Next() {
		m, err := s.scanMDM(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

// MDMSourceByName reads one source (ErrNotFound if it is not configured).
func (s *Store) MDMSourceByName(ctx context.Context, name string) (MDMSource, error) {
	return s.scanMDM(s.q.QueryRowContext(ctx, `SELECT `+mdmCols+` FROM mdm_sources WHERE name = ?`, name))
}

// MDMState is what the daemon's syncer polls each second: cheap, and
// without opening a secret.
type MDMState struct {
	Name        string
	Version     int64
	SyncRequest int64
}

// MDMStates lists each source's version and sync request counter.
func (s *Store) MDMStates(ctx context.Context) ([]MDMState, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, version, sync_request FROM mdm_sources ORDER BY name`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []MDMState
	for rows.Next() {
		var m MDMState
		if err := rows.Scan(&m.Name, &m.Version, &m.SyncRequest); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, m)
	}
	return out, mapErr(rows.Err())
}

// PutMDMSource creates or replaces a source's settings, secret (sealed;
// nil keeps the stored one), interval and switch, and bumps its version.
// Its sync history stays.
func (tx *Tx) PutMDMSource(ctx context.Context, m MDMSource, now time.Time) error {
	var sealed []byte
	if len(m.Secret) > 0 {
		var err error
		if sealed, err = tx.s.sealer.Seal(m.Secret, mdmContext(m.Name)); err != nil {
			return err
		}
	}
	_, err := tx.q.ExecContext(ctx, `INSERT INTO mdm_sources (name, settings, secret, interval_s, enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, secret = COALESCE(excluded.secret, mdm_sources.secret),
			interval_s = excluded.interval_s, enabled = excluded.enabled, version = mdm_sources.version + 1, updated_at = excluded.updated_at`,
		m.Name, m.Settings, sealed, int64(m.Interval/time.Second), m.Enabled, now.Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("mdm source %s: %w", m.Name, mapErr(err))
	}
	return nil
}

// DeleteMDMSource removes a source's configuration.
func (tx *Tx) DeleteMDMSource(ctx context.Context, name string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM mdm_sources WHERE name = ?`, name)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// RequestMDMSync asks the daemon for a sync of name now and returns the
// request's number (compare with MDMSource.SyncServed).
func (s *Store) RequestMDMSync(ctx context.Context, name string) (int64, error) {
	var n int64
	err := s.WithTx(ctx, func(tx *Tx) error {
		return mapErr(tx.q.QueryRowContext(ctx, `UPDATE mdm_sources SET sync_request = sync_request + 1 WHERE name = ? RETURNING sync_request`, name).Scan(&n))
	})
	return n, err
}

// StartMDMSync records that a sync of name begins at now, serving every
// request up to served.
func (s *Store) StartMDMSync(ctx context.Context, name string, served int64, now time.Time) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `UPDATE mdm_sources SET last_attempt_at = ?, sync_served = MAX(sync_served, ?) WHERE name = ?`, now.Unix(), served, name)
		return mapErr(err)
	})
}

// FinishMDMSync records that the sync serving requests up to served is
// over (its outcome is recorded already).
func (s *Store) FinishMDMSync(ctx context.Context, name string, served int64) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `UPDATE mdm_sources SET sync_done = MAX(sync_done, ?) WHERE name = ?`, served, name)
		return mapErr(err)
	})
}

// FailMDMSync records a sync that changed nothing: its error and time.
func (s *Store) FailMDMSync(ctx context.Context, name, msg string, now time.Time) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `UPDATE mdm_sources SET last_attempt_at = ?, last_error = ? WHERE name = ?`, now.Unix(), msg, name)
		return mapErr(err)
	})
}

// SucceedMDMSync records a successful sync, in the transaction that
// applied it.
func (tx *Tx) SucceedMDMSync(ctx context.Context, name string, devices int, now time.Time) error {
	_, err := tx.q.ExecContext(ctx, `UPDATE mdm_sources SET last_attempt_at = ?, last_success_at = ?, last_error = '', device_count = ? WHERE name = ?`,
		now.Unix(), now.Unix(), devices, name)
	return mapErr(err)
}

// UserRef is a local user's id and name.
type UserRef struct {
	ID   int64
	Name string
}

// UserRefs maps every local user's name, lower-cased, to the user: an MDM
// sync resolves thousands of owners against it at once.
func (tx *Tx) UserRefs(ctx context.Context) (map[string]UserRef, error) {
	rows, err := tx.q.QueryContext(ctx, `SELECT id, name FROM users`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := map[string]UserRef{}
	for rows.Next() {
		var u UserRef
		if err := rows.Scan(&u.ID, &u.Name); err != nil {
			return nil, mapErr(err)
		}
		out[strings.ToLower(u.Name)] = u
	}
	return out, mapErr(rows.Err())
}
