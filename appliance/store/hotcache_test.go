package store_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// TestCachedUserSeesItsOwnWritesAtOnce: a failure counted or a lock set by
// this process shows in the very next cached read (lockout depends on it).
func TestCachedUserSeesItsOwnWritesAtOnce(t *testing.T) {
	st := open(t, t.TempDir())
	id := createUser(t, st, store.User{Name: "alice", Groups: []string{"staff"}})
	if u, err := st.CachedUserByName(t.Context(), "ALICE"); err != nil || u.ID != id || u.Failures != 0 {
		t.Fatalf("got %+v, %v; want alice with no failures", u, err)
	}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.RecordFailure(ctx, id, now, 1, 15*60e9)
		return err
	})
	u, err := st.CachedUserByName(t.Context(), "alice")
	if err != nil || u.Failures != 1 || !u.LockedUntil.After(now) {
		t.Fatalf("after a failure: got failures %d locked until %v (%v), want 1 and locked", u.Failures, u.LockedUntil, err)
	}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.SetUserGroups(ctx, id, []string{"nurses"}) })
	if u, _ := st.CachedUserByName(t.Context(), "alice"); len(u.Groups) != 1 || u.Groups[0] != "nurses" {
		t.Fatalf("after a group change: got groups %v, want [nurses]", u.Groups)
	}
}

// TestCachedUserSeesAnotherProcess: the CLI writes through its own store;
// the daemon's cache notices at its next poll of the change counter.
func TestCachedUserSeesAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	daemon := open(t, dir)
	cli := open(t, dir)
	if _, err := daemon.CachedUserByName(t.Context(), "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want not found", err)
	}
	id := createUser(t, cli, store.User{Name: "bob"})
	daemon.PollNow()
	u, err := daemon.CachedUserByName(t.Context(), "bob")
	if err != nil || u.ID != id {
		t.Fatalf("after the CLI added bob: got %+v, %v", u, err)
	}
	withTx(t, cli, func(ctx context.Context, tx *store.Tx) error {
		u, err := tx.UserByName(ctx, "bob")
		if err != nil {
			return err
		}
		u.Disabled = true
		return tx.UpdateUser(ctx, u, now)
	})
	daemon.PollNow()
	if u, err := daemon.CachedUserByName(t.Context(), "bob"); err != nil || !u.Disabled {
		t.Fatalf("after the CLI disabled bob: got disabled=%v, %v", u.Disabled, err)
	}
	withTx(t, cli, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteUser(ctx, id) })
	daemon.PollNow()
	if _, err := daemon.CachedUserByName(t.Context(), "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the CLI deleted bob: got %v, want not found", err)
	}
}

// TestCachedUserFoldsOnlyASCII: SQLite's NOCASE folds A-Z only, so two
// names differing in a non-ASCII letter's case are two users, and the cache
// must not hand one the other's record.
func TestCachedUserFoldsOnlyASCII(t *testing.T) {
	st := open(t, t.TempDir())
	upper := createUser(t, st, store.User{Name: "Ärzte"})
	lower := createUser(t, st, store.User{Name: "ärzte"})
	for name, want := range map[string]int64{"Ärzte": upper, "ärzte": lower, "ÄRZTE": upper} {
		if u, err := st.CachedUserByName(t.Context(), name); err != nil || u.ID != want {
			t.Errorf("%q: got id %d (%v), want %d", name, u.ID, err, want)
		}
	}
}

// TestCachedGroupsAreTheCallersOwn: a caller changing the slice it got
// changes nothing for the next caller.
func TestCachedGroupsAreTheCallersOwn(t *testing.T) {
	st := open(t, t.TempDir())
	createUser(t, st, store.User{Name: "carol", Groups: []string{"staff"}})
	u, _ := st.CachedUserByName(t.Context(), "carol")
	u, _ = st.CachedUserByName(t.Context(), "carol")
	u.Groups[0] = "admins"
	if u, _ := st.CachedUserByName(t.Context(), "carol"); u.Groups[0] != "staff" {
		t.Fatalf("got groups %v, want [staff]", u.Groups)
	}
}

func TestBindAccountSetFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	daemon := open(t, dir)
	cli := open(t, dir)
	is := func(st *store.Store, name string, want bool) {
		t.Helper()
		if got, err := st.IsBindAccount(t.Context(), name); err != nil || got != want {
			t.Fatalf("IsBindAccount(%q): got %v, %v; want %v", name, got, err, want)
		}
	}
	is(daemon, "ehr", false)
	add := func(st *store.Store, name string) {
		withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
			return tx.AddBindAccount(ctx, store.BindAccount{Name: name, Hash: "x", Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, now)
		})
	}
	add(daemon, "ehr")
	is(daemon, "EHR", true)
	add(cli, "pacs")
	daemon.PollNow()
	is(daemon, "pacs", true)
	withTx(t, cli, func(ctx context.Context, tx *store.Tx) error { return tx.RemoveBindAccount(ctx, "ehr") })
	daemon.PollNow()
	is(daemon, "ehr", false)
}

// TestAuditGroupKeepsTheCache: the audit's group commit touches no cached
// table, so a login's audit entry does not empty the cache for the next.
func TestAuditGroupKeepsTheCache(t *testing.T) {
	st := open(t, t.TempDir())
	createUser(t, st, store.User{Name: "dave"})
	st.CachedUserByName(t.Context(), "dave")
	before := st.CacheGen()
	build := func(prevSeq int64, prevHash []byte) (store.AuditRow, error) {
		return store.AuditRow{Seq: prevSeq + 1, At: now, Kind: "decision", PrevHash: append([]byte{0}, prevHash...), Hash: []byte{byte(prevSeq)}}, nil
	}
	if _, err := st.AppendAuditGroup(t.Context(), []func(int64, []byte) (store.AuditRow, error){build, build, build}); err != nil {
		t.Fatal(err)
	}
	if after := st.CacheGen(); after != before {
		t.Fatalf("the audit's group commit dropped the cache (generation %d → %d)", before, after)
	}
}
