package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func enrol(t *testing.T, st *store.Store, userID int64, seed string) {
	t.Helper()
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		return tx.SetTOTP(ctx, store.TOTP{UserID: userID, Seed: secrets.Secret(seed), Digits: 6, Period: 30, Algorithm: "SHA1"}, now)
	})
}

func TestTOTPSeedSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	id := createUser(t, st, store.User{Name: "alice"})
	const seed = "seed-0123456789-abcdefgh"
	enrol(t, st, id, seed)

	var sealed []byte
	if err := raw(t, dir).QueryRowContext(t.Context(), `SELECT seed FROM mfa_totp WHERE user_id = ?`, id).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(seed)) {
		t.Errorf("seed column holds the plaintext seed: %q", sealed)
	}
	got, err := st.TOTP(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Seed) != seed || got.Digits != 6 || got.Period != 30 || got.Algorithm != "SHA1" || got.LastStep != 0 || !got.CreatedAt.Equal(now) {
		t.Errorf("TOTP: got %+v (seed %q)", got, []byte(got.Seed))
	}
}

// TestTOTPSeedMovedToAnotherUserDoesNotOpen: copying one user's sealed
// seed onto another's enrolment gives an error, not a working factor.
func TestTOTPSeedMovedToAnotherUserDoesNotOpen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	alice := createUser(t, st, store.User{Name: "alice"})
	mallory := createUser(t, st, store.User{Name: "mallory"})
	enrol(t, st, alice, "alice-seed-01234567")
	enrol(t, st, mallory, "mallory-seed-0123456")
	exec(t, raw(t, dir), `UPDATE mfa_totp SET seed = (SELECT seed FROM mfa_totp WHERE user_id = ?) WHERE user_id = ?`, alice, mallory)
	if got, err := st.TOTP(t.Context(), mallory); !errors.Is(err, secrets.ErrOpen) {
		t.Errorf("TOTP(mallory) with alice's sealed seed: got (%q, %v), want ErrOpen", []byte(got.Seed), err)
	}
}

// TestReplayedCodeRefused: a time step once used, or any older one, is
// never accepted again.
func TestReplayedCodeRefused(t *testing.T) {
	st := open(t, t.TempDir())
	id := createUser(t, st, store.User{Name: "alice"})
	enrol(t, st, id, "12345678901234567890")
	const step = 59333333
	tests := []struct {
		name string
		step int64
		want bool
	}{
		{"first use", step, true},
		{"same step again", step, false},
		{"older step", step - 1, false},
		{"much older step", 1, false},
		{"next step", step + 1, true},
		{"next step again", step + 1, false},
		{"the first step again", step, false},
		{"a later step", step + 5, true},
		{"a step skipped over", step + 3, false},
	}
	for _, tt := range tests {
		ok, err := st.ConsumeTOTPStep(t.Context(), id, tt.step)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tt.want {
			t.Errorf("%s: ConsumeTOTPStep(%d): got %v, want %v", tt.name, tt.step, ok, tt.want)
		}
	}
	got, err := st.TOTP(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastStep != step+5 {
		t.Errorf("LastStep: got %d, want %d", got.LastStep, step+5)
	}
	if ok, err := st.ConsumeTOTPStep(t.Context(), id+100, step+10); ok || err != nil {
		t.Errorf("ConsumeTOTPStep(unenrolled user): got (%v, %v), want (false, nil)", ok, err)
	}
}

func TestReenrolResetsReplayGuard(t *testing.T) {
	st := open(t, t.TempDir())
	id := createUser(t, st, store.User{Name: "alice"})
	enrol(t, st, id, "old-seed-0123456789")
	if ok, err := st.ConsumeTOTPStep(t.Context(), id, 1000); !ok || err != nil {
		t.Fatalf("ConsumeTOTPStep: got (%v, %v), want (true, nil)", ok, err)
	}
	enrol(t, st, id, "new-seed-0123456789")
	got, err := st.TOTP(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Seed) != "new-seed-0123456789" || got.LastStep != 0 {
		t.Errorf("after re-enrolment: got seed %q, last step %d, want the new seed and 0", []byte(got.Seed), got.LastStep)
	}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteTOTP(ctx, id) })
	if _, err := st.TOTP(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TOTP after delete: got %v, want ErrNotFound", err)
	}
}
