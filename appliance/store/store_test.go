package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// now is Monday 2026-11-30 10:00 UTC.
var now = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// open opens (creating if needed) the store in dir and closes it at the end
// of the test.
func open(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// withTx runs fn in a transaction and fails the test on error.
func withTx(t *testing.T, st *store.Store, fn func(ctx context.Context, tx *store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := st.WithTx(ctx, func(tx *store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
}

// raw opens the database file directly, as someone with access to the data
// directory (but not to clinicgate) could.
func raw(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.DBFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func createUser(t *testing.T, st *store.Store, u store.User) int64 {
	t.Helper()
	var id int64
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		var err error
		id, err = tx.CreateUser(ctx, u, now)
		return err
	})
	return id
}

func TestOpenCreatesDatabaseAndPrivateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st := open(t, dir)
	if err := st.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := st.Dir(), dir; got != want {
		t.Errorf("Dir(): got %q, want %q", got, want)
	}
	for _, name := range []string{store.DBFile, secrets.KeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode: got %v, want -rw-------", name, got)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got&0o007 != 0 {
		t.Errorf("data directory mode: got %v, want nothing for others", got)
	}
}

// TestDatabaseFilesArePrivate: every file SQLite keeps beside the database
// (the WAL holds recent rows: password hashes, audit entries) is as private
// as the database itself, from the first start on.
func TestDatabaseFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	createUser(t, st, store.User{Name: "alice", PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5"})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Name(), store.DBFile) {
			seen++
		}
		if got := fi.Mode().Perm(); got&0o077 != 0 {
			t.Errorf("%s mode: got %v, want no access for group or others", e.Name(), got)
		}
	}
	if seen < 2 {
		t.Errorf("database files: got %d, want the database and its WAL", seen)
	}
}

func TestOpenWithoutCreateRefusesEmptyDir(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(t.Context(), dir, store.Options{})
	if err == nil {
		st.Close()
		t.Fatal("Open without Create on an empty directory: got nil error, want an error")
	}
	if !strings.Contains(err.Error(), "clinicgate serve") {
		t.Errorf("error: got %q, want it to say how to create the database", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files left behind: got %d, want none", len(entries))
	}
	if _, err := store.Open(t.Context(), "", store.Options{Create: true}); err == nil {
		t.Error("Open with no directory: got nil error, want an error")
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	first, err := store.Open(t.Context(), dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	id := createUser(t, first, store.User{Name: "alice", Groups: []string{"nurses"}})
	createClient(t, first, "office-ap", "10.0.0.0/24", "s3cr3t-shared")
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	for _, create := range []bool{false, true} {
		st, err := store.Open(t.Context(), dir, store.Options{Create: create})
		if err != nil {
			t.Fatalf("reopen (Create %v): %v", create, err)
		}
		u, err := st.UserByName(t.Context(), "alice")
		if err != nil || u.ID != id {
			t.Errorf("reopen (Create %v): user: got (%d, %v), want (%d, nil)", create, u.ID, err, id)
		}
		c, err := st.ClientByName(t.Context(), "office-ap")
		if err != nil || string(c.Secret) != "s3cr3t-shared" {
			t.Errorf("reopen (Create %v): client secret: got (%q, %v), want the original", create, []byte(c.Secret), err)
		}
		st.Close()
	}
}

// TestLostKeyIsNotReplaced: a database whose key file is gone is refused,
// even with Create; a new key would make every sealed secret unreadable.
func TestLostKeyIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(t.Context(), dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	keyPath := filepath.Join(dir, secrets.KeyFile)
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	for _, create := range []bool{false, true} {
		st, err := store.Open(t.Context(), dir, store.Options{Create: create})
		if err == nil {
			st.Close()
			t.Fatalf("Open (Create %v) without the key file: got nil error, want ErrNoKey", create)
		}
		if !errors.Is(err, secrets.ErrNoKey) {
			t.Errorf("Open (Create %v) without the key file: got %v, want ErrNoKey", create, err)
		}
		if _, err := os.Stat(keyPath); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open (Create %v) wrote a new key file", create)
		}
	}
}

// TestForeignKeyRefused: the key file of another appliance is refused at
// start instead of failing on the first secret.
func TestForeignKeyRefused(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	for _, dir := range []string{dirA, dirB} {
		st, err := store.Open(t.Context(), dir, store.Options{Create: true})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	keyB, err := os.ReadFile(filepath.Join(dirB, secrets.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirA, secrets.KeyFile), keyB, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, create := range []bool{false, true} {
		st, err := store.Open(t.Context(), dirA, store.Options{Create: create})
		if err == nil {
			st.Close()
			t.Fatalf("Open (Create %v) with another store's key: got nil error, want an error", create)
		}
		if !strings.Contains(err.Error(), "does not belong") {
			t.Errorf("Open (Create %v) with another store's key: got %q, want it to say the key does not belong", create, err)
		}
	}
	// The right key still opens it.
	st, err := store.Open(t.Context(), dirB, store.Options{})
	if err != nil {
		t.Fatalf("Open with its own key: %v", err)
	}
	st.Close()
}

func TestWithTxRollsBackOnError(t *testing.T) {
	st := open(t, t.TempDir())
	boom := errors.New("boom")
	err := st.WithTx(t.Context(), func(tx *store.Tx) error {
		if _, err := tx.CreateUser(t.Context(), store.User{Name: "alice"}, now); err != nil {
			return err
		}
		if err := tx.SetSetting(t.Context(), "k", "v"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx: got %v, want %v", err, boom)
	}
	if _, err := st.UserByName(t.Context(), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user after rollback: got %v, want ErrNotFound", err)
	}
	if v, err := st.Setting(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("setting after rollback: got (%q, %v), want ErrNotFound", v, err)
	}
}

func TestSettings(t *testing.T) {
	st := open(t, t.TempDir())
	if _, err := st.Setting(t.Context(), "site_name"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing setting: got %v, want ErrNotFound", err)
	}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.SetSetting(ctx, "site_name", "North") })
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error { return tx.SetSetting(ctx, "site_name", "South") })
	if v, err := st.Setting(t.Context(), "site_name"); err != nil || v != "South" {
		t.Errorf("Setting: got (%q, %v), want (South, nil)", v, err)
	}
	all, err := st.Settings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if all["site_name"] != "South" {
		t.Errorf("Settings()[site_name]: got %q, want South", all["site_name"])
	}
}

// TestDataDirectoryWithURICharacters: SQLite reads the file name as a
// URI, where '#' starts a fragment, '?' a query and '%' an escape; a data
// directory whose path holds them must still be the one opened.
func TestDataDirectoryWithURICharacters(t *testing.T) {
	for _, name := range []string{"clinic#2", "what?", "100%", "a b"} {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(t.Context(), dir, store.Options{Create: true})
		if err != nil {
			t.Fatalf("%q: create: %v", name, err)
		}
		createUser(t, st, store.User{Name: "alice"})
		st.Close()
		st, err = store.Open(t.Context(), dir, store.Options{})
		if err != nil {
			t.Fatalf("%q: reopen: %v", name, err)
		}
		if _, err := st.UserByName(t.Context(), "alice"); err != nil {
			t.Errorf("%q: reopened store lost alice: %v", name, err)
		}
		st.Close()
		if _, err := os.Stat(filepath.Join(dir, "clinicgate.db")); err != nil {
			t.Errorf("%q: the database is not in the data directory: %v", name, err)
		}
	}
}
