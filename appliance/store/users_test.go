package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

func TestCreateAndFindUser(t *testing.T) {
	st := open(t, t.TempDir())
	expires := now.Add(90 * 24 * time.Hour)
	id := createUser(t, st, store.User{
		Name: "Alice", DisplayName: "Alice Liddell", PasswordHash: "$argon2id$x",
		ExpiresAt: expires, Hours: "Mon-Fri 07:00-19:00", Groups: []string{"nurses"},
	})
	for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
		t.Run(name, func(t *testing.T) {
			u, err := st.UserByName(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			if u.ID != id || u.Name != "Alice" || u.DisplayName != "Alice Liddell" || u.PasswordHash != "$argon2id$x" ||
				!u.ExpiresAt.Equal(expires) || u.Hours != "Mon-Fri 07:00-19:00" || u.Disabled ||
				u.Version != 1 || u.Source != "local" || !u.CreatedAt.Equal(now) {
				t.Errorf("UserByName(%q): got %+v", name, u)
			}
			if !slices.Equal(u.Groups, []string{"nurses"}) {
				t.Errorf("groups: got %q, want [nurses]", u.Groups)
			}
		})
	}
	if u, err := st.UserByID(t.Context(), id); err != nil || u.Name != "Alice" {
		t.Errorf("UserByID: got (%q, %v), want (Alice, nil)", u.Name, err)
	}
	for _, name := range []string{"bob", "Alic", "Alice ", ""} {
		if _, err := st.UserByName(t.Context(), name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByName(%q): got %v, want ErrNotFound", name, err)
		}
	}
	if _, err := st.UserByID(t.Context(), id+1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByID(unknown): got %v, want ErrNotFound", err)
	}
}

func TestDuplicateUserConflicts(t *testing.T) {
	st := open(t, t.TempDir())
	createUser(t, st, store.User{Name: "alice"})
	for _, name := range []string{"alice", "ALICE", "Alice"} {
		err := st.WithTx(t.Context(), func(tx *store.Tx) error {
			_, err := tx.CreateUser(t.Context(), store.User{Name: name}, now)
			return err
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateUser(%q) after alice: got %v, want ErrConflict", name, err)
		}
	}
	users, err := st.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 {
		t.Errorf("users: got %d, want 1", len(users))
	}
}

// TestStaleUpdateConflicts: two admins editing one user cannot silently
// overwrite each other.
func TestStaleUpdateConflicts(t *testing.T) {
	st := open(t, t.TempDir())
	createUser(t, st, store.User{Name: "alice", DisplayName: "Alice"})
	read := func() store.User {
		u, err := st.UserByName(t.Context(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	first, second := read(), read()

	first.DisplayName = "Alice L."
	first.Disabled = true
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateUser(ctx, first, now.Add(time.Minute)) })

	second.DisplayName = "Alice M."
	err := st.WithTx(t.Context(), func(tx *store.Tx) error { return tx.UpdateUser(t.Context(), second, now.Add(2*time.Minute)) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale UpdateUser: got %v, want ErrConflict", err)
	}
	got := read()
	if got.DisplayName != "Alice L." || !got.Disabled || got.Version != first.Version+1 || !got.UpdatedAt.Equal(now.Add(time.Minute)) {
		t.Errorf("after the stale update: got %+v, want the first edit at version %d", got, first.Version+1)
	}

	// Re-read, then the edit goes through.
	fresh := read()
	fresh.DisplayName = "Alice M."
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateUser(ctx, fresh, now) })
	if got := read(); got.DisplayName != "Alice M." {
		t.Errorf("after a fresh update: got %q, want Alice M.", got.DisplayName)
	}

	gone := fresh
	gone.ID = 9999
	err = st.WithTx(t.Context(), func(tx *store.Tx) error { return tx.UpdateUser(t.Context(), gone, now) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateUser(unknown id): got %v, want ErrNotFound", err)
	}
}

func TestSetUserGroupsKeepsOrder(t *testing.T) {
	st := open(t, t.TempDir())
	id := createUser(t, st, store.User{Name: "alice", Groups: []string{"Nurses", "ER", "Admins"}})
	createUser(t, st, store.User{Name: "bob", Groups: []string{"staff"}})
	tests := []struct {
		name string
		set  []string
		want []string
	}{
		{"reversed", []string{"Admins", "ER", "Nurses"}, []string{"Admins", "ER", "Nurses"}},
		{"not alphabetical", []string{"zeta", "alpha", "mid"}, []string{"zeta", "alpha", "mid"}},
		{"existing group in other case keeps its name", []string{"er", "NURSES"}, []string{"ER", "Nurses"}},
		{"duplicates kept once", []string{"staff", "STAFF", "er"}, []string{"staff", "ER"}},
		{"trimmed", []string{"  ER  "}, []string{"ER"}},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.SetUserGroups(ctx, id, tt.set) })
			u, err := st.UserByID(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(u.Groups, tt.want) {
				t.Errorf("SetUserGroups(%q): got %q, want %q", tt.set, u.Groups, tt.want)
			}
		})
	}
	// Other users keep theirs.
	if u, err := st.UserByName(t.Context(), "bob"); err != nil || !slices.Equal(u.Groups, []string{"staff"}) {
		t.Errorf("bob's groups: got (%q, %v), want [staff]", u.Groups, err)
	}
	groups, err := st.Groups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byName := func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }
	if !slices.IsSortedFunc(groups, byName) || !slices.Contains(groups, "Nurses") || !slices.Contains(groups, "zeta") {
		t.Errorf("Groups(): got %q, want every group made, sorted ignoring case", groups)
	}
}

func TestDeleteUser(t *testing.T) {
	st := open(t, t.TempDir())
	id := createUser(t, st, store.User{Name: "alice", Groups: []string{"nurses"}})
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.SetTOTP(ctx, store.TOTP{UserID: id, Seed: []byte("12345678901234567890"), Digits: 6, Period: 30, Algorithm: "SHA1"}, now); err != nil {
			return err
		}
		_, err := tx.AddDevice(ctx, store.Device{MAC: "aa:bb:cc:dd:ee:ff", UserID: id}, now)
		return err
	})
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteUser(ctx, id) })
	if _, err := st.UserByName(t.Context(), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user after delete: got %v, want ErrNotFound", err)
	}
	if _, err := st.TOTP(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("enrolment after delete: got %v, want ErrNotFound", err)
	}
	if _, err := st.DeviceByMAC(t.Context(), "aa:bb:cc:dd:ee:ff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("device after delete: got %v, want ErrNotFound", err)
	}
	err := st.WithTx(t.Context(), func(tx *store.Tx) error { return tx.DeleteUser(t.Context(), id) })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: got %v, want ErrNotFound", err)
	}
}

// TestLockoutAfterRepeatedFailures: the threshold-th failure locks the
// account, failures during the lock do not extend it, and once the lock
// has run out the count starts again.
func TestLockoutAfterRepeatedFailures(t *testing.T) {
	st := open(t, t.TempDir())
	id := createUser(t, st, store.User{Name: "alice"})
	const threshold, lockFor = 3, 5 * time.Minute
	fail := func(at time.Time) store.Lockout {
		t.Helper()
		var out store.Lockout
		withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
			var err error
			out, err = tx.RecordFailure(ctx, id, at, threshold, lockFor)
			return err
		})
		return out
	}
	lockedUntil := func() time.Time {
		t.Helper()
		u, err := st.UserByID(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return u.LockedUntil
	}
	wantLock := now.Add(2 * time.Second).Add(lockFor)

	steps := []struct {
		name         string
		at           time.Time
		wantFailures int
		wantLocked   time.Time // in the result
		wantStored   time.Time // in the user row afterwards
	}{
		{"first", now, 1, time.Time{}, time.Time{}},
		{"second", now.Add(time.Second), 2, time.Time{}, time.Time{}},
		{"third locks", now.Add(2 * time.Second), 3, wantLock, wantLock},
		{"during the lock: counted, lock unchanged", now.Add(time.Minute), 4, time.Time{}, wantLock},
		{"a second before the end", wantLock.Add(-time.Second), 5, time.Time{}, wantLock},
		{"lock ran out: count restarts", wantLock, 1, time.Time{}, time.Time{}},
		{"second again", wantLock.Add(time.Second), 2, time.Time{}, time.Time{}},
		{"third again locks again", wantLock.Add(2 * time.Second), 3, wantLock.Add(2 * time.Second).Add(lockFor), wantLock.Add(2 * time.Second).Add(lockFor)},
	}
	for _, s := range steps {
		got := fail(s.at)
		if got.Failures != s.wantFailures || !got.LockedUntil.Equal(s.wantLocked) {
			t.Errorf("%s: got %+v, want {Failures:%d LockedUntil:%v}", s.name, got, s.wantFailures, s.wantLocked)
		}
		if stored := lockedUntil(); !stored.Equal(s.wantStored) {
			t.Errorf("%s: stored lock: got %v, want %v", s.name, stored, s.wantStored)
		}
	}

	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.ResetFailures(ctx, id) })
	u, err := st.UserByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if u.Failures != 0 || !u.LockedUntil.IsZero() {
		t.Errorf("after ResetFailures: got failures %d, lock %v, want 0 and none", u.Failures, u.LockedUntil)
	}
}

func TestLockoutDisabledWithZeroThreshold(t *testing.T) {
	st := open(t, t.TempDir())
	id := createUser(t, st, store.User{Name: "alice"})
	for i := 1; i <= 10; i++ {
		withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
			out, err := tx.RecordFailure(ctx, id, now, 0, time.Minute)
			if err == nil && (out.Failures != i || !out.LockedUntil.IsZero()) {
				t.Errorf("failure %d: got %+v, want {Failures:%d} and no lock", i, out, i)
			}
			return err
		})
	}
}
