package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// DeviceCA is the appliance's device CA (migrations/009_scep.sql): DER
// certificates, and PKCS#8 keys in plaintext here, sealed in the store.
type DeviceCA struct {
	Cert, RACert []byte
	Key, RAKey   secrets.Secret
	CreatedAt    time.Time
}

const (
	deviceCAKeyContext = "device-ca-key"
	deviceRAKeyContext = "device-ca-ra-key"
)

// DeviceCA reads the device CA, or ErrNotFound before it is made.
func (s *Store) DeviceCA(ctx context.Context) (DeviceCA, error) {
	var ca DeviceCA
	var key, raKey []byte
	var at int64
	err := s.q.QueryRowContext(ctx, `SELECT cert, key, ra_cert, ra_key, created_at FROM device_ca WHERE id = 1`).Scan(&ca.Cert, &key, &ca.RACert, &raKey, &at)
	if err != nil {
		return DeviceCA{}, mapErr(err)
	}
	if ca.Key, err = s.sealer.Open(key, deviceCAKeyContext); err != nil {
		return DeviceCA{}, fmt.Errorf("device CA key: %w", err)
	}
	if ca.RAKey, err = s.sealer.Open(raKey, deviceRAKeyContext); err != nil {
		return DeviceCA{}, fmt.Errorf("device CA's SCEP RA key: %w", err)
	}
	ca.CreatedAt = time.Unix(at, 0).UTC()
	return ca, nil
}

// CreateDeviceCA stores the device CA, sealing its keys; ErrConflict when
// there is one already (another process made it first).
func (tx *Tx) CreateDeviceCA(ctx context.Context, ca DeviceCA, now time.Time) error {
	key, err := tx.s.sealer.Seal(ca.Key, deviceCAKeyContext)
	if err != nil {
		return err
	}
	raKey, err := tx.s.sealer.Seal(ca.RAKey, deviceRAKeyContext)
	if err != nil {
		return err
	}
	_, err = tx.q.ExecContext(ctx, `INSERT INTO device_ca (id, cert, key, ra_cert, ra_key, created_at) VALUES (1, ?, ?, ?, ?, ?)`, ca.Cert, key, ca.RACert, raKey, now.Unix())
	if err != nil {
		return fmt.Errorf("device CA: %w", mapErr(err))
	}
	return nil
}

// NextCRLNumber increments and returns the device CA's CRL number.
func (tx *Tx) NextCRLNumber(ctx context.Context) (int64, error) {
	var n int64
	err := tx.q.QueryRowContext(ctx, `UPDATE device_ca SET crl_number = crl_number + 1 WHERE id = 1 RETURNING crl_number`).Scan(&n)
	return n, mapErr(err)
}

// SCEPChallenge is a SCEP challenge password, by its hash.
type SCEPChallenge struct {
	ID         int64
	Hash       string // hex SHA-256 of the challenge
	DeviceID   int64  // the inventory record to attach the certificate to (0: a new one)
	DeviceName string
	OwnerName  string
	MAC        string
	Validity   time.Duration // of the certificate it buys
	Uses       int           // how many requests it may serve (1: one-time)
	UsesLeft   int
	CreatedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time
}

// AddSCEPChallenge stores a challenge's hash.
func (tx *Tx) AddSCEPChallenge(ctx context.Context, c SCEPChallenge, now time.Time) (int64, error) {
	if c.Uses < 1 {
		c.Uses = 1
	}
	res, err := tx.q.ExecContext(ctx, `INSERT INTO scep_challenges (hash, device_id, device_name, owner_name, mac, validity, uses, uses_left, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, nullID(c.DeviceID), c.DeviceName, c.OwnerName, c.MAC, int64(c.Validity/time.Second), c.Uses, c.Uses, c.CreatedBy, now.Unix(), c.ExpiresAt.Unix())
	if err != nil {
		return 0, mapErr(err)
	}
	return res.LastInsertId()
}

// ErrChallengeUsed and ErrChallengeExpired say why a known challenge was
// refused.
var (
	ErrChallengeUsed    = errors.New("challenge already used")
	ErrChallengeExpired = errors.New("challenge expired")
)

const challengeCols = `id, hash, device_id, device_name, owner_name, mac, validity, uses, uses_left, created_by, created_at, expires_at, used_at`

func scanChallenge(sc interface{ Scan(...any) error }) (SCEPChallenge, error) {
	var c SCEPChallenge
	var dev, used sql.NullInt64
	var validity, created, expires int64
	if err := sc.Scan(&c.ID, &c.Hash, &dev, &c.DeviceName, &c.OwnerName, &c.MAC, &validity, &c.Uses, &c.UsesLeft, &c.CreatedBy, &created, &expires, &used); err != nil {
		return SCEPChallenge{}, mapErr(err)
	}
	c.DeviceID, c.Validity = dev.Int64, time.Duration(validity)*time.Second
	c.CreatedAt, c.ExpiresAt, c.UsedAt = time.Unix(created, 0).UTC(), time.Unix(expires, 0).UTC(), fromUnix(used)
	return c, nil
}

// UseSCEPChallenge takes one use of the challenge with this hash:
// ErrNotFound for an unknown one, ErrChallengeUsed or ErrChallengeExpired
// (with the record) for one that cannot be used. The use is spent even
// when the request it came with is refused later in the transaction's
// caller: it was spent on a device.
func (tx *Tx) UseSCEPChallenge(ctx context.Context, hash string, now time.Time) (SCEPChallenge, error) {
	c, err := scanChallenge(tx.q.QueryRowContext(ctx, `SELECT `+challengeCols+` FROM scep_challenges WHERE hash = ?`, hash))
	if err != nil {
		return SCEPChallenge{}, err
	}
	if c.UsesLeft <= 0 {
		return c, ErrChallengeUsed
	}
	if !now.Before(c.ExpiresAt) {
		return c, ErrChallengeExpired
	}
	res, err := tx.q.ExecContext(ctx, `UPDATE scep_challenges SET used_at = ?, uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0`, now.Unix(), c.ID)
	if err != nil {
		return c, mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return c, ErrChallengeUsed
	}
	c.UsedAt, c.UsesLeft = now.UTC(), c.UsesLeft-1
	return c, nil
}

// SCEPChallenges lists the challenges that can still be used, newest
// first (their hashes included; the challenges themselves are not kept).
func (s *Store) SCEPChallenges(ctx context.Context, now time.Time) ([]SCEPChallenge, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+challengeCols+` FROM scep_challenges WHERE uses_left > 0 AND expires_at > ? ORDER BY id DESC`, now.Unix())
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []SCEPChallenge
	for rows.Next() {
		c, err := scanChallenge(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// WithdrawSCEPChallenge makes a challenge unusable at once (ErrNotFound
// when there is no usable challenge of that id).
func (tx *Tx) WithdrawSCEPChallenge(ctx context.Context, id int64, now time.Time) error {
	res, err := tx.q.ExecContext(ctx, `UPDATE scep_challenges SET uses_left = 0 WHERE id = ? AND uses_left > 0 AND expires_at > ?`, id, now.Unix())
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// IssuedCert is a certificate the device CA issued.
type IssuedCert struct {
	Serial       string // lower-case hex, no leading zeros
	Fingerprint  string
	DeviceID     int64
	Subject      string
	NotAfter     time.Time
	IssuedAt     time.Time
	RevokedAt    time.Time
	RevokeReason string
}

// AddIssuedCert records an issued certificate.
func (tx *Tx) AddIssuedCert(ctx context.Context, c IssuedCert, now time.Time) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO scep_certs (serial, fingerprint, device_id, subject, not_after, issued_at) VALUES (?, ?, ?, ?, ?, ?)`,
		c.Serial, c.Fingerprint, nullID(c.DeviceID), c.Subject, c.NotAfter.Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("issued certificate %s: %w", c.Serial, mapErr(err))
	}
	return nil
}

// RevokeIssuedCert marks an issued certificate revoked, by fingerprint or
// serial (kind RevokeFingerprint or RevokeSerial). It returns the record,
// or ErrNotFound when the device CA did not issue it; one revoked already
// keeps its first date.
func (tx *Tx) RevokeIssuedCert(ctx context.Context, kind, value, reason string, now time.Time) (IssuedCert, error) {
	col := "serial"
	if kind == RevokeFingerprint {
		col = "fingerprint"
	}
	_, err := tx.q.ExecContext(ctx, `UPDATE scep_certs SET revoked_at = ?, revoke_reason = ? WHERE `+col+` = ? AND revoked_at IS NULL`, now.Unix(), reason, value)
	if err != nil {
		return IssuedCert{}, mapErr(err)
	}
	cs, err := issuedCerts(ctx, tx.q, col+` = ?`, value)
	if err != nil {
		return IssuedCert{}, err
	}
	if len(cs) == 0 {
		return IssuedCert{}, ErrNotFound
	}
	return cs[0], nil
}

// IssuedCerts lists the device CA's certificates, newest first.
func (s *Store) IssuedCerts(ctx context.Context) ([]IssuedCert, error) {
	return issuedCerts(ctx, s.q, `1`)
}

// RevokedIssuedCerts lists the revoked ones that have not expired yet
// (an expired certificate needs no CRL entry: no one accepts it).
func (s *Store) RevokedIssuedCerts(ctx context.Context, now time.Time) ([]IssuedCert, error) {
	return issuedCerts(ctx, s.q, `revoked_at IS NOT NULL AND not_after > ?`, now.Unix())
}

// IssuedCertsVersion changes whenever a certificate is revoked: the CRL
// is signed again when it does.
func (s *Store) IssuedCertsVersion(ctx context.Context) (string, error) {
	var n, last int64
	err := s.q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(revoked_at), 0) FROM scep_certs WHERE revoked_at IS NOT NULL`).Scan(&n, &last)
	return fmt.Sprintf("%d/%d", n, last), mapErr(err)
}

func issuedCerts(ctx context.Context, q querier, cond string, args ...any) ([]IssuedCert, error) {
	rows, err := q.QueryContext(ctx, `SELECT serial, fingerprint, COALESCE(device_id, 0), subject, not_after, issued_at, revoked_at, revoke_reason FROM scep_certs WHERE `+cond+` ORDER BY issued_at DESC, serial`, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []IssuedCert
	for rows.Next() {
		var c IssuedCert
		var na, ia int64
		var ra sql.NullInt64
		if err := rows.Scan(&c.Serial, &c.Fingerprint, &c.DeviceID, &c.Subject, &na, &ia, &ra, &c.RevokeReason); err != nil {
			return nil, mapErr(err)
		}
		c.NotAfter, c.IssuedAt, c.RevokedAt = time.Unix(na, 0).UTC(), time.Unix(ia, 0).UTC(), fromUnix(ra)
		out = append(out, c)
	}
	return out, mapErr(rows.Err())
}

// FindDevices finds records by name (the description) or source id,
// ignoring case: for naming a device on the command line.
func (tx *Tx) FindDevices(ctx context.Context, name string) ([]Device, error) {
	return tx.devicesWhere(ctx, `i.name = ? COLLATE NOCASE OR i.source_id = ? COLLATE NOCASE`, name, name)
}

// FindDeviceByID reads one record inside a transaction.
func (tx *Tx) FindDeviceByID(ctx context.Context, id int64) (Device, error) {
	ds, err := tx.devicesWhere(ctx, `i.id = ?`, id)
	if err == nil && len(ds) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return Device{}, err
	}
	return ds[0], nil
}
