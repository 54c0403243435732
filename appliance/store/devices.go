package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/policy"
)

// Device sources.
const (
	SourceManual = "manual" // a MAC address bound to a user by an admin
	SourceIntune = "intune"
	SourceJamf   = "jamf"
	SourceGoogle = "google"
	SourceCert   = "cert" // a device that enrolled a certificate over SCEP
)

// Sources lists every device source, in the order the console shows them.
var Sources = []string{SourceManual, SourceIntune, SourceJamf, SourceGoogle, SourceCert}

// Compliance is what a source says of a device, or (Stale) what the gate
// makes of a record it has not read from its source for too long.
type Compliance string

const (
	Compliant    Compliance = "compliant"
	Noncompliant Compliance = "noncompliant"
	Unknown      Compliance = "unknown"
	Stale        Compliance = "stale"
)

// Device is one inventory record of one source (see
// migrations/007_device_inventory.sql).
type Device struct {
	ID       int64
	Source   string
	SourceID string // the MDM's id; the MAC address for a manual record
	// Description is the device's name: the MDM's device name, or what
	// the admin typed ("front desk laptop").
	Description string
	Serial      string
	// MAC is the first of MACs, for one-line displays; MACs are canonical
	// (aa:bb:cc:dd:ee:ff).
	MAC  string
	MACs []string
	// UserID and UserName are the owner: a local user (UserID != 0), or
	// the name the MDM gives (a UPN) when no local user has it yet.
	UserID   int64
	UserName string
	// Shared marks a shared workstation: no one owner.
	Shared           bool
	Compliance       Compliance // compliant, noncompliant or unknown, as the source said
	ComplianceReason string     // the source's own words
	LastSeen         time.Time  // the device's last check-in with its MDM
	SyncedAt         time.Time  // when this appliance last read the record from its source
	Override         Compliance // "" or compliant/noncompliant, until OverrideUntil
	OverrideUntil    time.Time
	OverrideBy       string
	OverrideReason   string
	Certs            []DeviceCert
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// DeviceCert is a certificate that belongs to a device.
type DeviceCert struct {
	Fingerprint string // SHA-256, selfcert's form
	Serial      string // lower-case hex, no leading zeros
	NotAfter    time.Time
}

// State is the record's compliance as the gate reads it at now: an
// unexpired override first; then, for a record from an MDM, Stale when it
// was last read from the source longer than grace ago (grace <= 0: never
// stale); else what the source said. why explains it for the story.
func (d Device) State(now time.Time, grace time.Duration) (state Compliance, why string) {
	if d.Override != "" && now.Before(d.OverrideUntil) {
		return d.Override, fmt.Sprintf("override by %s until %s: %s", d.OverrideBy, d.OverrideUntil.UTC().Format(time.RFC3339), d.OverrideReason)
	}
	if d.Source != SourceManual && d.Source != SourceCert && grace > 0 {
		if d.SyncedAt.IsZero() || now.Sub(d.SyncedAt) > grace {
			return Stale, fmt.Sprintf("%s data last read %s, older than the %s grace period", d.Source, stamp(d.SyncedAt), grace)
		}
	}
	why = fmt.Sprintf("%s says %s", d.Source, d.Compliance)
	if d.ComplianceReason != "" {
		why += " (" + d.ComplianceReason + ")"
	}
	if !d.SyncedAt.IsZero() {
		why += ", synced " + stamp(d.SyncedAt)
	}
	return d.Compliance, why
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// AddDevice binds a MAC address to a user: a manual record.
func (tx *Tx) AddDevice(ctx context.Context, d Device, now time.Time) (int64, error) {
	if d.MAC == "" && len(d.MACs) > 0 {
		d.MAC = d.MACs[0]
	}
	var exists int
	// One hand-bound record per address: a second binding is a conflict.
	err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM inventory i JOIN inventory_macs m ON m.device_id = i.id WHERE i.source = 'manual' AND m.mac = ?`, d.MAC).Scan(&exists)
	if err != nil {
		return 0, mapErr(err)
	}
	if exists > 0 {
		return 0, fmt.Errorf("device %s: %w", d.MAC, ErrConflict)
	}
	d.Source, d.SourceID = SourceManual, d.MAC
	d.MACs = []string{d.MAC}
	id, _, err := tx.upsertDevice(ctx, d, now)
	if err != nil {
		return 0, fmt.Errorf("device %s: %w", d.MAC, err)
	}
	return id, nil
}

// DeleteDevice removes the manual record of a MAC address.
func (tx *Tx) DeleteDevice(ctx context.Context, mac string) error {
	res, err := tx.q.ExecContext(ctx, `DELETE FROM inventory WHERE source = 'manual' AND id IN (SELECT device_id FROM inventory_macs WHERE mac = ?)`, mac)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// upsertDevice writes a record by (source, source_id) and replaces its MAC
// addresses. It returns the id and the compliance the record had before
// ("" for a new one). Certificates are not touched (AddDeviceCert).
func (tx *Tx) upsertDevice(ctx context.Context, d Device, now time.Time) (int64, Compliance, error) {
	if d.Compliance == "" {
		d.Compliance = Unknown
	}
	var id int64
	var before string
	err := tx.q.QueryRowContext(ctx, `SELECT id, compliance FROM inventory WHERE source = ? AND source_id = ?`, d.Source, d.SourceID).Scan(&id, &before)
	switch {
	case err == sql.ErrNoRows:
		res, err := tx.q.ExecContext(ctx, `INSERT INTO inventory (source, source_id, name, serial, owner_id, owner_name, shared, compliance, compliance_reason, last_seen, synced_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.Source, d.SourceID, d.Description, d.Serial, nullID(d.UserID), d.UserName, d.Shared, string(d.Compliance), d.ComplianceReason,
			unixOrNull(d.LastSeen), unixOrNull(d.SyncedAt), now.Unix(), now.Unix())
		if err != nil {
			return 0, "", mapErr(err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return 0, "", err
		}
	case err != nil:
		return 0, "", mapErr(err)
	default:
		_, err := tx.q.ExecContext(ctx, `UPDATE inventory SET name = ?, serial = ?, owner_id = ?, owner_name = ?, shared = ?, compliance = ?, compliance_reason = ?, last_seen = ?, synced_at = ?, updated_at = ? WHERE id = ?`,
			d.Description, d.Serial, nullID(d.UserID), d.UserName, d.Shared, string(d.Compliance), d.ComplianceReason,
			unixOrNull(d.LastSeen), unixOrNull(d.SyncedAt), now.Unix(), id)
		if err != nil {
			return 0, "", mapErr(err)
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM inventory_macs WHERE device_id = ?`, id); err != nil {
			return 0, "", mapErr(err)
		}
	}
	macs := make([]string, 0, len(d.MACs))
	for _, m := range d.MACs {
		// Canonical here, whatever the caller did: the gate looks MACs up
		// in the canonical form only.
		c, err := policy.NormalizeMAC(m)
		if err != nil {
			return 0, "", fmt.Errorf("MAC %q: %w", m, err)
		}
		macs = append(macs, c)
	}
	for _, m := range dedupe(macs) {
		if _, err := tx.q.ExecContext(ctx, `INSERT INTO inventory_macs (device_id, mac) VALUES (?, ?)`, id, m); err != nil {
			return 0, "", mapErr(err)
		}
	}
	return id, Compliance(before), nil
}

func dedupe(macs []string) []string {
	out := slices.Clone(macs)
	slices.Sort(out)
	return slices.Compact(out)
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// SyncResult is what ReplaceSourceDevices changed.
type SyncResult struct {
	Added, Updated, Removed int
	// TurnedNoncompliant are the records that went from anything else to
	// noncompliant; Removed the ones the source no longer lists. The
	// caller queues posture events for them (AddPostureEvent).
	TurnedNoncompliant []Device
	RemovedDevices     []Device
}

// ReplaceSourceDevices makes a source's records exactly devs (a full,
// successful sync): it updates the ones it has, adds the new ones and
// deletes the ones the source no longer lists. Overrides and
// certificates of kept records stay.
func (tx *Tx) ReplaceSourceDevices(ctx context.Context, source string, devs []Device, now time.Time) (SyncResult, error) {
	var res SyncResult
	old, err := tx.devicesWhere(ctx, `i.source = ?`, source)
	if err != nil {
		return res, err
	}
	byID := make(map[string]Device, len(old))
	for _, d := range old {
		byID[d.SourceID] = d
	}
	seen := make(map[string]bool, len(devs))
	for _, d := range devs {
		if d.SourceID == "" || seen[d.SourceID] {
			// The caller dedupes; a repeat here would overwrite.
			return res, fmt.Errorf("device source %s: empty or repeated id %q", source, d.SourceID)
		}
		seen[d.SourceID] = true
		d.Source = source
		id, before, err := tx.upsertDevice(ctx, d, now)
		if err != nil {
			return res, fmt.Errorf("device %s %s: %w", source, d.SourceID, err)
		}
		d.ID = id
		if before == "" {
			res.Added++
		} else {
			res.Updated++
		}
		if d.Compliance == Noncompliant && before != Noncompliant {
			res.TurnedNoncompliant = append(res.TurnedNoncompliant, d)
		}
	}
	for _, d := range old {
		if seen[d.SourceID] {
			continue
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM inventory WHERE id = ?`, d.ID); err != nil {
			return res, mapErr(err)
		}
		res.Removed++
		res.RemovedDevices = append(res.RemovedDevices, d)
	}
	return res, nil
}

// PutDevice writes one record by (source, source_id), as ReplaceSourceDevices
// does for a whole source: for a single device fetched or enrolled.
func (tx *Tx) PutDevice(ctx context.Context, d Device, now time.Time) (int64, error) {
	id, _, err := tx.upsertDevice(ctx, d, now)
	return id, err
}

// SetDeviceOverride sets (state compliant or noncompliant) or clears
// (state "") an admin's override of a record's compliance.
func (tx *Tx) SetDeviceOverride(ctx context.Context, id int64, state Compliance, until time.Time, by, reason string, now time.Time) error {
	var res sql.Result
	var err error
	if state == "" {
		res, err = tx.q.ExecContext(ctx, `UPDATE inventory SET override = NULL, override_until = NULL, override_by = '', override_reason = '', updated_at = ? WHERE id = ?`, now.Unix(), id)
	} else {
		res, err = tx.q.ExecContext(ctx, `UPDATE inventory SET override = ?, override_until = ?, override_by = ?, override_reason = ?, updated_at = ? WHERE id = ?`, string(state), until.Unix(), by, reason, now.Unix(), id)
	}
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// AddDeviceCert records that a certificate belongs to a device.
func (tx *Tx) AddDeviceCert(ctx context.Context, deviceID int64, c DeviceCert, now time.Time) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO inventory_certs (fingerprint, serial, device_id, not_after, created_at) VALUES (?, ?, ?, ?, ?)`,
		c.Fingerprint, c.Serial, deviceID, c.NotAfter.Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("certificate %s: %w", c.Fingerprint, mapErr(err))
	}
	return nil
}

// DeviceByID reads one record.
func (s *Store) DeviceByID(ctx context.Context, id int64) (Device, error) {
	ds, err := s.devicesWhere(ctx, `i.id = ?`, id)
	if err != nil {
		return Device{}, err
	}
	if len(ds) == 0 {
		return Device{}, ErrNotFound
	}
	return ds[0], nil
}

// DeviceByMAC finds the manual record of a MAC address (the hand binding).
func (s *Store) DeviceByMAC(ctx context.Context, mac string) (Device, error) {
	ds, err := s.devicesWhere(ctx, `i.source = 'manual' AND i.id IN (SELECT device_id FROM inventory_macs WHERE mac = ?)`, mac)
	if err != nil {
		return Device{}, err
	}
	if len(ds) == 0 {
		return Device{}, ErrNotFound
	}
	return ds[0], nil
}

// DevicesByMAC finds every record, of any source, that lists a MAC address.
func (s *Store) DevicesByMAC(ctx context.Context, mac string) ([]Device, error) {
	return s.devicesWhere(ctx, `i.id IN (SELECT device_id FROM inventory_macs WHERE mac = ?)`, mac)
}

// DevicesByCert finds the records a certificate belongs to, by fingerprint
// or by serial.
func (s *Store) DevicesByCert(ctx context.Context, fingerprint, serial string) ([]Device, error) {
	return s.devicesWhere(ctx, `i.id IN (SELECT device_id FROM inventory_certs WHERE fingerprint = ? OR (serial = ? AND serial != ''))`, fingerprint, serial)
}

// DevicesByCert, in a transaction: a revocation queues its posture event
// with the devices' MACs as they are when it commits.
func (tx *Tx) DevicesByCert(ctx context.Context, fingerprint, serial string) ([]Device, error) {
	return tx.devicesWhere(ctx, `i.id IN (SELECT device_id FROM inventory_certs WHERE fingerprint = ? OR (serial = ? AND serial != ''))`, fingerprint, serial)
}

// Devices lists records, all or those owned by one user (by name), by
// owner then source.
func (s *Store) Devices(ctx context.Context, userName string) ([]Device, error) {
	return s.devicesWhere(ctx, `? = '' OR COALESCE(u.name, i.owner_name) = ?`, userName, userName)
}

// SourceDevices lists one source's records.
func (s *Store) SourceDevices(ctx context.Context, source string) ([]Device, error) {
	return s.devicesWhere(ctx, `i.source = ?`, source)
}

// devicesWhere runs the inventory query with a condition on i (inventory)
// and u (the owner), then reads the MACs and certificates of what it found.
func (s *Store) devicesWhere(ctx context.Context, cond string, args ...any) ([]Device, error) {
	return devicesWhere(ctx, s.q, cond, args...)
}

func (tx *Tx) devicesWhere(ctx context.Context, cond string, args ...any) ([]Device, error) {
	return devicesWhere(ctx, tx.q, cond, args...)
}

func devicesWhere(ctx context.Context, q querier, cond string, args ...any) ([]Device, error) {
	rows, err := q.QueryContext(ctx, `SELECT i.id, i.source, i.source_id, i.name, i.serial, COALESCE(i.owner_id, 0), COALESCE(u.name, i.owner_name), i.shared,
			i.compliance, i.compliance_reason, i.last_seen, i.synced_at, COALESCE(i.override, ''), i.override_until, i.override_by, i.override_reason, i.created_at, i.updated_at,
			COALESCE((SELECT group_concat(mac, ',') FROM (SELECT mac FROM inventory_macs WHERE device_id = i.id ORDER BY mac)), ''),
			COALESCE((SELECT group_concat(fingerprint || ' ' || serial || ' ' || not_after, ',') FROM inventory_certs WHERE device_id = i.id), '')
		FROM inventory i LEFT JOIN users u ON u.id = i.owner_id
		WHERE `+cond+` ORDER BY COALESCE(u.name, i.owner_name), i.source, i.name, i.id`, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		var d Device
		var comp, override, macs, certs string
		var lastSeen, synced, until sql.NullInt64
		var created, updated int64
		if err := rows.Scan(&d.ID, &d.Source, &d.SourceID, &d.Description, &d.Serial, &d.UserID, &d.UserName, &d.Shared,
			&comp, &d.ComplianceReason, &lastSeen, &synced, &override, &until, &d.OverrideBy, &d.OverrideReason, &created, &updated, &macs, &certs); err != nil {
			return nil, mapErr(err)
		}
		d.Compliance, d.Override = Compliance(comp), Compliance(override)
		d.LastSeen, d.SyncedAt, d.OverrideUntil = fromUnix(lastSeen), fromUnix(synced), fromUnix(until)
		d.CreatedAt, d.UpdatedAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
		if macs != "" {
			d.MACs = strings.Split(macs, ",")
			d.MAC = d.MACs[0]
		}
		for _, c := range strings.Split(certs, ",") {
			var dc DeviceCert
			var na int64
			if _, err := fmt.Sscanf(c, "%s %s %d", &dc.Fingerprint, &dc.Serial, &na); err == nil {
				dc.NotAfter = time.Unix(na, 0).UTC()
				d.Certs = append(d.Certs, dc)
			}
		}
		out = append(out, d)
	}
	return out, mapErr(rows.Err())
}

// Posture event kinds (migrations/007_device_inventory.sql).
const (
	EventDeviceNoncompliant = "device_noncompliant"
	EventCertRevoked        = "cert_revoked"
	EventUserDisabled       = "user_disabled"
	EventDeviceRemoved      = "device_removed"
)

// PostureEvent is a change that must end or move sessions now.
type PostureEvent struct {
	ID        int64
	Kind      string
	DeviceID  int64    // 0 when the event is about a user
	UserName  string   // the user whose sessions it touches, if known
	MACs      []string // the device's addresses when the event was written
	Detail    string
	CreatedAt time.Time
	DoneAt    time.Time
	Result    string
}

// maxPendingEvents bounds the queue: past it, the oldest pending events
// are closed unsent (their sessions are refused at the next login anyway).
const maxPendingEvents = 10000

// AddPostureEvent queues an event, in the transaction that made the change.
func (tx *Tx) AddPostureEvent(ctx context.Context, e PostureEvent, now time.Time) error {
	_, err := tx.q.ExecContext(ctx, `INSERT INTO posture_events (kind, device_id, user_name, macs, detail, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		e.Kind, nullID(e.DeviceID), e.UserName, strings.Join(e.MACs, ","), e.Detail, now.Unix())
	if err != nil {
		return mapErr(err)
	}
	_, err = tx.q.ExecContext(ctx, `UPDATE posture_events SET done_at = ?, result = 'dropped: queue full' WHERE done_at IS NULL AND id <= (SELECT MAX(id) FROM posture_events) - ?`, now.Unix(), maxPendingEvents)
	return mapErr(err)
}

// PendingPostureEvents lists events not yet handled, oldest first.
func (s *Store) PendingPostureEvents(ctx context.Context, limit int) ([]PostureEvent, error) {
	return s.postureEvents(ctx, `done_at IS NULL ORDER BY id LIMIT ?`, limit)
}

// RecentPostureEvents lists the newest events, handled or not.
func (s *Store) RecentPostureEvents(ctx context.Context, limit int) ([]PostureEvent, error) {
	return s.postureEvents(ctx, `1 ORDER BY id DESC LIMIT ?`, limit)
}

func (s *Store) postureEvents(ctx context.Context, tail string, args ...any) ([]PostureEvent, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT id, kind, COALESCE(device_id, 0), user_name, macs, detail, created_at, done_at, result FROM posture_events WHERE `+tail, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []PostureEvent
	for rows.Next() {
		var e PostureEvent
		var macs string
		var created int64
		var done sql.NullInt64
		if err := rows.Scan(&e.ID, &e.Kind, &e.DeviceID, &e.UserName, &macs, &e.Detail, &created, &done, &e.Result); err != nil {
			return nil, mapErr(err)
		}
		if macs != "" {
			e.MACs = strings.Split(macs, ",")
		}
		e.CreatedAt, e.DoneAt = time.Unix(created, 0).UTC(), fromUnix(done)
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}

// FinishPostureEvent records what handling an event did.
func (s *Store) FinishPostureEvent(ctx context.Context, id int64, result string, now time.Time) error {
	return s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.q.ExecContext(ctx, `UPDATE posture_events SET done_at = ?, result = ? WHERE id = ?`, now.Unix(), result, id)
		return mapErr(err)
	})
}
