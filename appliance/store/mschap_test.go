package store_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// TestMigrationAddsMSCHAPTables: a database from before the NT hash,
// certificate and revocation tables gets them when opened.
func TestMigrationAddsMSCHAPTables(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(t.Context(), dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// Roll the database back to schema version 5, as an older clinicgate
	// left it.
	db := raw(t, dir)
	for _, q := range append(undo7, `DROP TABLE nt_hashes`, `DROP TABLE user_certs`, `DROP TABLE cert_revocations`, `DELETE FROM schema_migrations WHERE version >= 6`) {
		exec(t, db, q)
	}
	db.Close()
	st = open(t, dir)
	var v int
	if err := raw(t, dir).QueryRowContext(t.Context(), `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v < 6 {
		t.Fatalf("got schema version %d %v, want 6 or later", v, err)
	}
	id := createUser(t, st, store.User{Name: "alice"})
	if _, err := st.KeepNTHash(t.Context(), id, bytes.Repeat([]byte{7}, 16), now); err != nil {
		t.Fatalf("the migrated database cannot keep an NT hash: %v", err)
	}
}

// TestNTHashSealedAndGoneWithUser: the NT hash is never stored as it is,
// is written only when it changes, and goes with the user.
func TestNTHashSealedAndGoneWithUser(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	id := createUser(t, st, store.User{Name: "alice"})
	other := createUser(t, st, store.User{Name: "bob"})
	h := []byte("0123456789abcdef")
	if _, err := st.NTHash(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound before one is kept", err)
	}
	for i, want := range []bool{true, false} {
		changed, err := st.KeepNTHash(t.Context(), id, h, now)
		if err != nil || changed != want {
			t.Fatalf("keep #%d: got %v %v, want changed %v", i+1, changed, err, want)
		}
	}
	got, err := st.NTHash(t.Context(), id)
	if err != nil || !bytes.Equal(got, h) {
		t.Fatalf("got %x %v, want %x", got, err, h)
	}
	var sealed []byte
	if err := raw(t, dir).QueryRowContext(t.Context(), `SELECT hash FROM nt_hashes WHERE user_id = ?`, id).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, h) {
		t.Fatal("the NT hash is stored in the clear")
	}
	// Sealed to its user: moved to another user's row, it does not open.
	exec(t, raw(t, dir), `INSERT INTO nt_hashes (user_id, hash, updated_at) VALUES (?, ?, 0)`, other, sealed)
	if _, err := st.NTHash(t.Context(), other); err == nil {
		t.Fatal("another user's sealed NT hash opened")
	}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteUser(ctx, id) })
	var n int
	if err := raw(t, dir).QueryRowContext(t.Context(), `SELECT COUNT(*) FROM nt_hashes WHERE user_id = ?`, id).Scan(&n); err != nil || n != 0 {
		t.Fatalf("got %d rows %v, want the NT hash gone with the user", n, err)
	}
}

func TestCertRegistrationsAndRevocations(t *testing.T) {
	st := open(t, filepath.Join(t.TempDir(), "d"))
	id := createUser(t, st, store.User{Name: "alice"})
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		return tx.RegisterCert(ctx, store.UserCert{Fingerprint: "AA:BB", UserID: id}, now)
	})
	if got, err := st.CertOwner(t.Context(), "AA:BB"); err != nil || got != id {
		t.Fatalf("got %d %v, want alice's id", got, err)
	}
	err := st.WithTx(t.Context(), func(tx *store.Tx) error {
		return tx.RegisterCert(t.Context(), store.UserCert{Fingerprint: "AA:BB", UserID: id}, now)
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("registering twice: got %v, want ErrConflict", err)
	}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.Revoke(ctx, store.Revocation{Kind: store.RevokeSerial, Value: "1f", Reason: "lost"}, now); err != nil {
			return err
		}
		return tx.Revoke(ctx, store.Revocation{Kind: store.RevokeFingerprint, Value: "CC:DD"}, now)
	})
	for _, tc := range []struct {
		fp, serial string
		found      bool
	}{
		{"CC:DD", "", true}, {"", "1f", true}, {"AA:BB", "1f", true}, {"AA:BB", "2f", false},
		{"", "", false}, {"1f", "", false}, {"", "CC:DD", false},
	} {
		_, err := st.Revoked(t.Context(), tc.fp, tc.serial)
		if found := err == nil; found != tc.found || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("Revoked(%q, %q): got %v, want found %v", tc.fp, tc.serial, err, tc.found)
		}
	}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteUser(ctx, id) })
	if _, err := st.CertOwner(t.Context(), "AA:BB"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want the registration gone with the user", err)
	}
	if rs, err := st.Revocations(t.Context()); err != nil || len(rs) != 2 {
		t.Fatalf("got %v %v, want both revocations kept", rs, err)
	}
}
