package backup_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/backup"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

const pass = "correct horse battery staple"

// newSite makes a data directory with two users, as the daemon's first
// start and an operator would.
func newSite(t *testing.T) (string, *admin.Service) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := admin.Create(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	svc, done, err := admin.Open(t.Context(), dir, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(done)
	for _, u := range []string{"alice", "bob"} {
		if err := svc.AddUser(t.Context(), admin.NewUser{Name: u, Password: secrets.Secret("pw-" + u + "-12345")}); err != nil {
			t.Fatal(err)
		}
	}
	return dir, svc
}

func makeBackup(t *testing.T, svc *admin.Service) admin.BackupFile {
	t.Helper()
	bf, err := svc.CreateBackup(t.Context(), secrets.Secret(pass), admin.BackupOptions{WorkFactor: 10})
	if err != nil {
		t.Fatal(err)
	}
	return bf
}

func restore(t *testing.T, file, passphrase, dir string, force bool) (backup.Manifest, error) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return backup.Restore(t.Context(), f, secrets.Secret(passphrase), dir, backup.RestoreOptions{Force: force, Actor: "cli:test", From: "test"})
}

func TestRestoreKeepsEveryCommittedChange(t *testing.T) {
	_, svc := newSite(t)
	bf := makeBackup(t, svc)
	// A change after the backup is not in it.
	if err := svc.AddUser(t.Context(), admin.NewUser{Name: "carol"}); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "new")
	m, err := restore(t, bf.Path, pass, target, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.AuditSeq == 0 || m.Schema == 0 {
		t.Errorf("manifest %+v: want an audit position and a schema", m)
	}
	got, done, err := admin.Open(t.Context(), target, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	users, err := got.Users(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if strings.Join(names, ",") != "alice,bob" {
		t.Errorf("restored users %v, want alice,bob", names)
	}
	rep, err := got.Audit.Verify(t.Context())
	if err != nil || !rep.OK() {
		t.Fatalf("audit verify after restore: %v %v", err, rep.Problems)
	}
	tail, err := got.Store.AuditRows(t.Context(), auditLast(1))
	if err != nil || len(tail) != 1 || tail[0].Reason != "backup_restore" {
		t.Errorf("last audit entry %+v %v, want the restore recorded", tail, err)
	}
	if fi, err := os.Stat(filepath.Join(target, secrets.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored key: %v %v, want 0600", fi, err)
	}
}

func TestWrongPassphraseWritesNothing(t *testing.T) {
	_, svc := newSite(t)
	bf := makeBackup(t, svc)
	target := filepath.Join(t.TempDir(), "new")
	_, err := restore(t, bf.Path, "not the passphrase at all", target, false)
	if !errors.Is(err, backup.ErrPassphrase) {
		t.Fatalf("got %v, want ErrPassphrase", err)
	}
	assertNothingIn(t, target)
}

func TestAlteredBackupIsRefused(t *testing.T) {
	_, svc := newSite(t)
	bf := makeBackup(t, svc)
	orig, err := os.ReadFile(bf.Path)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func([]byte) []byte{
		"a flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"cut short":      func(b []byte) []byte { return b[:len(b)-100] },
		"last byte gone": func(b []byte) []byte { return b[:len(b)-1] },
		"appended":       func(b []byte) []byte { return append(b, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "b"+backup.Ext)
			if err := os.WriteFile(p, change(bytes.Clone(orig)), 0o600); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "new")
			_, err := restore(t, p, pass, target, false)
			if !errors.Is(err, backup.ErrDamaged) {
				t.Fatalf("got %v, want ErrDamaged", err)
			}
			assertNothingIn(t, target)
		})
	}
}

func TestRestoreRefusesAStoreUnlessForced(t *testing.T) {
	dir, svc := newSite(t)
	bf := makeBackup(t, svc)
	other := filepath.Join(t.TempDir(), "other")
	if err := admin.Create(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(other, secrets.KeyFile))
	if _, err := restore(t, bf.Path, pass, other, false); !errors.Is(err, backup.ErrNotFresh) {
		t.Fatalf("got %v, want ErrNotFresh", err)
	}
	if after, _ := os.ReadFile(filepath.Join(other, secrets.KeyFile)); !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed the key")
	}
	// Litestream's working files describe the replaced database.
	if err := os.MkdirAll(filepath.Join(other, ".clinicgate.db-litestream"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := restore(t, bf.Path, pass, other, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, ".clinicgate.db-litestream")); err == nil {
		t.Error("the replaced store's replication state was left beside the restored one")
	}
	want, _ := os.ReadFile(filepath.Join(dir, secrets.KeyFile))
	if got, _ := os.ReadFile(filepath.Join(other, secrets.KeyFile)); !bytes.Equal(got, want) {
		t.Error("forced restore did not install the backup's key")
	}
	aside, _ := filepath.Glob(filepath.Join(other, "replaced-*", secrets.KeyFile))
	if len(aside) != 1 {
		t.Fatalf("the replaced store was not kept aside: %v", aside)
	}
	if kept, _ := os.ReadFile(aside[0]); !bytes.Equal(kept, before) {
		t.Error("the key kept aside is not the replaced one")
	}
}

func TestShortPassphraseIsRefused(t *testing.T) {
	_, svc := newSite(t)
	for _, p := range []string{"", "short", "elevenchars", "twelve chars\n"} {
		if _, err := svc.CreateBackup(t.Context(), secrets.Secret(p), admin.BackupOptions{WorkFactor: 10}); !errors.Is(err, admin.ErrInvalid) {
			t.Errorf("passphrase %q: got %v, want refused", p, err)
		}
	}
	if list, _ := svc.Backups(t.Context()); len(list) != 0 {
		t.Errorf("refused passphrases left backups: %v", list)
	}
}

func TestBackupsArePrivateAndBounded(t *testing.T) {
	dir, svc := newSite(t)
	for range admin.KeepBackups + 2 {
		makeBackup(t, svc)
	}
	list, err := svc.Backups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != admin.KeepBackups {
		t.Fatalf("%d backups kept, want %d", len(list), admin.KeepBackups)
	}
	fi, err := os.Stat(filepath.Join(dir, admin.BackupDir))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("backups/: %v %v, want 0700", fi.Mode(), err)
	}
	for _, b := range list {
		fi, err := os.Stat(b.Path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", b.Name, fi.Mode(), err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, admin.BackupDir))
	if len(ents) != admin.KeepBackups {
		t.Errorf("backups/ holds %d entries (snapshots left behind?), want %d", len(ents), admin.KeepBackups)
	}
	// Every backup is audited, without its passphrase.
	rows, err := svc.Store.AuditRows(context.Background(), auditLast(100))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		if r.Reason == "backup_create" {
			n++
		}
		if strings.Contains(r.Detail, pass) {
			t.Fatalf("the passphrase is in the audit: %q", r.Detail)
		}
	}
	if n != admin.KeepBackups+2 {
		t.Errorf("%d backup_create entries, want %d", n, admin.KeepBackups+2)
	}
}

func assertNothingIn(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s holds %d files after a refused restore", dir, len(ents))
	}
	stray, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".clinicgate-restore-*"))
	if len(stray) != 0 {
		t.Fatalf("staging left behind: %v", stray)
	}
}

func auditLast(n int) store.AuditFilter { return store.AuditFilter{Limit: n, Newest: true} }
