package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// A backup chosen in the wizard of a fresh appliance is checked while the
// daemon runs, and put in place when the daemon stops and opens itself
// again (ErrRestart): the running daemon never swaps its store under
// itself, and the fresh store it replaced is kept aside.
func TestWizardRestoreIsInstalledAtRestart(t *testing.T) {
	ctx := t.Context()
	// The old appliance, and a backup of it.
	old := filepath.Join(t.TempDir(), "old")
	if err := admin.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	svc, done, err := admin.Open(ctx, old, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddUser(ctx, admin.NewUser{Name: "alice", Password: secrets.Secret("pw-alice-12345")}); err != nil {
		t.Fatal(err)
	}
	bf, err := svc.CreateBackup(ctx, secrets.Secret("a long passphrase"), admin.BackupOptions{WorkFactor: 10})
	done()
	if err != nil {
		t.Fatal(err)
	}

	cfg := loopback(t)
	d := open(t, cfg)
	if err := d.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	incoming := filepath.Join(cfg.DataDir, admin.IncomingDir)
	if err := os.MkdirAll(incoming, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(bf.Path)
	if err := os.WriteFile(filepath.Join(incoming, "old.cgbackup"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- d.Run(context.Background()) }()
	wiz, err := d.Admin("ssh:tech")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wiz.StageRestore(ctx, "old.cgbackup", secrets.Secret("not the passphrase")); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := wiz.StageRestore(ctx, "../old/clinicgate.key", secrets.Secret("a long passphrase")); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("a path out of incoming/: %v", err)
	}
	if _, err := wiz.StageRestore(ctx, "old.cgbackup", secrets.Secret("a long passphrase")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ran:
		if !errors.Is(err, ErrRestart) {
			t.Fatalf("Run returned %v, want ErrRestart", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not restart for the staged restore")
	}
	d2 := open(t, cfg)
	svc2, err := d2.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	users, err := svc2.Users(ctx)
	if err != nil || len(users) != 1 || users[0].Name != "alice" {
		t.Fatalf("users after the restore: %v %v", users, err)
	}
	if rep, err := svc2.Audit.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("audit after the restore: %v %v", err, rep.Problems)
	}
	if aside, _ := filepath.Glob(filepath.Join(cfg.DataDir, "replaced-*", "clinicgate.db")); len(aside) != 1 {
		t.Fatalf("the replaced fresh store was not kept: %v", aside)
	}
	// A restore is refused once the appliance is no longer fresh.
	if _, err := svc2.StageRestore(ctx, "old.cgbackup", secrets.Secret("a long passphrase")); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("restore onto a store with users: %v", err)
	}
}
