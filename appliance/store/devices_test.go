package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// undo7 rolls a database back from migration 007 to the schema before it
// (later migrations first).
var undo7 = append(slices.Clone(undo10), []string{
	`DROP TABLE inventory_certs`, `DROP TABLE inventory_macs`, `DROP TABLE inventory`, `DROP TABLE posture_events`,
	`DROP INDEX acct_sessions_station`, `DROP INDEX acct_sessions_framed`,
	`CREATE TABLE devices (id INTEGER PRIMARY KEY, mac TEXT NOT NULL UNIQUE, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, description TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL)`,
	`CREATE INDEX devices_user ON devices(user_id)`,
	`DELETE FROM schema_migrations WHERE version >= 7`,
}...)

// TestMigrationKeepsHandBoundDevices: a MAC address bound by hand before
// the inventory existed is a manual record of the same user afterwards.
func TestMigrationKeepsHandBoundDevices(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	id := createUser(t, st, store.User{Name: "alice"})
	st.Close()
	db := raw(t, dir)
	for _, q := range undo7 {
		exec(t, db, q)
	}
	exec(t, db, `INSERT INTO devices (mac, user_id, description, created_at) VALUES ('aa:bb:cc:dd:ee:01', ?, 'front desk', 5)`, id)
	db.Close()
	st = open(t, dir)
	d, err := st.DeviceByMAC(t.Context(), "aa:bb:cc:dd:ee:01")
	if err != nil {
		t.Fatal(err)
	}
	if d.Source != store.SourceManual || d.UserID != id || d.UserName != "alice" || d.Description != "front desk" || d.Compliance != store.Unknown {
		t.Fatalf("migrated record: %+v", d)
	}
}

func TestInventorySyncReplacesSource(t *testing.T) {
	st := open(t, t.TempDir())
	alice := createUser(t, st, store.User{Name: "alice"})
	ctx := t.Context()
	first := []store.Device{
		{SourceID: "d1", Description: "LAPTOP-1", Serial: "S1", UserID: alice, UserName: "alice@clinic.example", MACs: []string{"aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"}, Compliance: store.Compliant, SyncedAt: now},
		{SourceID: "d2", Description: "LAPTOP-2", UserName: "carol@clinic.example", MACs: []string{"aa:bb:cc:dd:ee:03"}, Compliance: store.Compliant, SyncedAt: now},
	}
	var res store.SyncResult
	err := st.WithTx(ctx, func(tx *store.Tx) (err error) {
		res, err = tx.ReplaceSourceDevices(ctx, store.SourceIntune, first, now)
		return err
	})
	if err != nil || res.Added != 2 || res.Updated != 0 || res.Removed != 0 {
		t.Fatalf("first sync: %+v %v", res, err)
	}
	ds, err := st.DevicesByMAC(ctx, "aa:bb:cc:dd:ee:02")
	if err != nil || len(ds) != 1 || ds[0].UserName != "alice" || len(ds[0].MACs) != 2 {
		t.Fatalf("by MAC: %+v %v", ds, err)
	}
	// d1 turns noncompliant and loses a MAC; d2 is gone; d3 is new.
	later := now.Add(time.Hour)
	second := []store.Device{
		{SourceID: "d1", Description: "LAPTOP-1", UserID: alice, MACs: []string{"aa:bb:cc:dd:ee:01"}, Compliance: store.Noncompliant, ComplianceReason: "BitLocker off", SyncedAt: later},
		{SourceID: "d3", Description: "LAPTOP-3", MACs: []string{"aa:bb:cc:dd:ee:04"}, Compliance: store.Unknown, SyncedAt: later},
	}
	err = st.WithTx(ctx, func(tx *store.Tx) (err error) {
		res, err = tx.ReplaceSourceDevices(ctx, store.SourceIntune, second, later)
		return err
	})
	if err != nil || res.Added != 1 || res.Updated != 1 || res.Removed != 1 || len(res.TurnedNoncompliant) != 1 || res.RemovedDevices[0].SourceID != "d2" {
		t.Fatalf("second sync: %+v %v", res, err)
	}
	if ds, _ := st.DevicesByMAC(ctx, "aa:bb:cc:dd:ee:02"); len(ds) != 0 {
		t.Fatalf("a dropped MAC still finds %+v", ds)
	}
	if ds, _ := st.DevicesByMAC(ctx, "aa:bb:cc:dd:ee:03"); len(ds) != 0 {
		t.Fatalf("a removed device still found: %+v", ds)
	}
	// A repeated id in one sync is refused, not silently merged.
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ReplaceSourceDevices(ctx, store.SourceIntune, []store.Device{{SourceID: "x"}, {SourceID: "x"}}, later)
		return err
	})
	if err == nil {
		t.Fatal("a repeated device id was accepted")
	}
	if ds, _ := st.SourceDevices(ctx, store.SourceIntune); len(ds) != 2 {
		t.Fatalf("a refused sync changed the inventory: %d records", len(ds))
	}
}

func TestDeviceStateStaleAndOverride(t *testing.T) {
	d := store.Device{Source: store.SourceIntune, Compliance: store.Compliant, SyncedAt: now}
	if s, _ := d.State(now.Add(time.Hour), 2*time.Hour); s != store.Compliant {
		t.Fatalf("fresh: %s", s)
	}
	if s, why := d.State(now.Add(3*time.Hour), 2*time.Hour); s != store.Stale || why == "" {
		t.Fatalf("old: %s %q", s, why)
	}
	if s, _ := d.State(now.Add(300*time.Hour), 0); s != store.Compliant {
		t.Fatalf("no grace set: %s", s)
	}
	d.Override, d.OverrideUntil, d.OverrideBy = store.Noncompliant, now.Add(time.Hour), "admin"
	if s, _ := d.State(now, time.Hour); s != store.Noncompliant {
		t.Fatalf("override: %s", s)
	}
	if s, _ := d.State(now.Add(2*time.Hour), 10*time.Hour); s != store.Compliant {
		t.Fatalf("expired override: %s", s)
	}
	m := store.Device{Source: store.SourceManual, Compliance: store.Unknown}
	if s, _ := m.State(now.Add(1000*time.Hour), time.Hour); s != store.Unknown {
		t.Fatalf("a manual record is never stale: %s", s)
	}
}

func TestDeviceCertsAndOverride(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	var id int64
	err := st.WithTx(ctx, func(tx *store.Tx) (err error) {
		if id, err = tx.PutDevice(ctx, store.Device{Source: store.SourceCert, SourceID: "c1", MACs: []string{"aa:bb:cc:dd:ee:09"}}, now); err != nil {
			return err
		}
		return tx.AddDeviceCert(ctx, id, store.DeviceCert{Fingerprint: "AA:BB", Serial: "1f", NotAfter: now.Add(time.Hour)}, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range [][2]string{{"AA:BB", ""}, {"", "1f"}} {
		ds, err := st.DevicesByCert(ctx, q[0], q[1])
		if err != nil || len(ds) != 1 || ds[0].ID != id || len(ds[0].Certs) != 1 || ds[0].Certs[0].Serial != "1f" {
			t.Fatalf("by cert %v: %+v %v", q, ds, err)
		}
	}
	if ds, _ := st.DevicesByCert(ctx, "", ""); len(ds) != 0 {
		t.Fatalf("an empty fingerprint and serial found %+v", ds)
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		return tx.SetDeviceOverride(ctx, id, store.Compliant, now.Add(time.Hour), "admin", "repaired", now)
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := st.DeviceByID(ctx, id)
	if d.Override != store.Compliant || !d.OverrideUntil.Equal(now.Add(time.Hour)) || d.OverrideReason != "repaired" {
		t.Fatalf("override: %+v", d)
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error { return tx.SetDeviceOverride(ctx, 999, "", time.Time{}, "", "", now) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("override of a missing device: %v", err)
	}
}

func TestPostureEventQueue(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	err := st.WithTx(ctx, func(tx *store.Tx) error {
		return tx.AddPostureEvent(ctx, store.PostureEvent{Kind: store.EventUserDisabled, UserName: "alice", MACs: []string{"aa:bb:cc:dd:ee:01"}}, now)
	})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := st.PendingPostureEvents(ctx, 10)
	if err != nil || len(ev) != 1 || ev[0].UserName != "alice" || ev[0].MACs[0] != "aa:bb:cc:dd:ee:01" {
		t.Fatalf("pending: %+v %v", ev, err)
	}
	if err := st.FinishPostureEvent(ctx, ev[0].ID, "disconnect-ack from 10.0.0.2", now); err != nil {
		t.Fatal(err)
	}
	if ev, _ := st.PendingPostureEvents(ctx, 10); len(ev) != 0 {
		t.Fatalf("still pending: %+v", ev)
	}
	err = st.WithTx(ctx, func(tx *store.Tx) error {
		return tx.AddPostureEvent(ctx, store.PostureEvent{Kind: "bogus"}, now)
	})
	if err == nil {
		t.Fatal("an unknown event kind was queued")
	}
}

// TestMigrationBelowTheNewestStillRuns: a migration missing from a
// database that already has a newer one (branches merged out of order)
// is applied at the next open.
func TestMigrationBelowTheNewestStillRuns(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	st.Close()
	db := raw(t, dir)
	exec(t, db, `DROP TABLE mdm_sources`)
	exec(t, db, `DELETE FROM schema_migrations WHERE version = 8`)
	db.Close()
	st = open(t, dir)
	st.Close()
	var n int
	if err := raw(t, dir).QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations WHERE version = 8`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("migration 8 applied %d times, %v", n, err)
	}
	if err := raw(t, dir).QueryRowContext(t.Context(), `SELECT COUNT(*) FROM mdm_sources`).Scan(&n); err != nil {
		t.Fatalf("mdm_sources was not made again: %v", err)
	}
}
