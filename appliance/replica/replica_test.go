package replica_test

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/backup"
	"github.com/clinicgate/clinicgate/appliance/replica"
	"github.com/clinicgate/clinicgate/appliance/replica/sftptest"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{
		"backup@192.0.2.10:2222/clinicgate": "backup@192.0.2.10:2222/clinicgate",
		"backup@nas.local/replicas/cg":      "backup@nas.local:22/replicas/cg",
		"root@127.0.0.1:22//srv/r":          "root@127.0.0.1:22//srv/r",
	} {
		got, err := replica.ParseTarget(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %s", in, got, err, want)
		}
		// What is stored is the string: it must lead back to the same place.
		if again, err := replica.ParseTarget(got.String()); err != nil || again != got {
			t.Errorf("ParseTarget(%q) does not round-trip: %v, %v", got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "host:22/p", "u@host:22", "u@host:22/", "u@host:99999/p", "u@:22/p"} {
		if _, err := replica.ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}

func TestProbeRefusesAnotherHostKey(t *testing.T) {
	srv := sftptest.Start(t)
	tg, err := replica.ParseTarget(srv.Target("r"))
	if err != nil {
		t.Fatal(err)
	}
	cred := replica.Credentials{Key: srv.KeyPEM}
	hk, fp, err := replica.Probe(t.Context(), tg, cred, "")
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, readLog(srv))
	}
	if fp != srv.HostFingerprint || hk != srv.HostKey {
		t.Errorf("probe saw %s / %s, want %s", fp, hk, srv.HostFingerprint)
	}
	if _, _, err := replica.Probe(t.Context(), tg, cred, fp); err != nil {
		t.Errorf("the right fingerprint: %v", err)
	}
	if _, _, err := replica.Probe(t.Context(), tg, cred, "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); err == nil || !strings.Contains(err.Error(), "host key") {
		t.Errorf("another host key: %v", err)
	}
}

func TestReplicaRestoresEveryCommittedChange(t *testing.T) {
	srv := sftptest.Start(t)
	tg, _ := replica.ParseTarget(srv.Target("site"))
	dir := filepath.Join(t.TempDir(), "data")
	if err := admin.Create(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	svc, done, err := admin.Open(t.Context(), dir, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := replica.Config{Target: tg, HostKey: srv.HostKey, Cred: replica.Credentials{Key: srv.KeyPEM}, SyncInterval: 200 * time.Millisecond}
	r, err := replica.Start(t.Context(), filepath.Join(dir, store.DBFile), cfg, log)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, readLog(srv))
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if err := svc.AddUser(t.Context(), admin.NewUser{Name: u, Password: secrets.Secret("pw-" + u + "-12345")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Sync(t.Context()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if st := r.Status(time.Now()); st.LastReplicated.IsZero() || st.LastError != "" {
		t.Errorf("status after a sync: %+v", st)
	}
	done()
	if err := r.Close(t.Context()); err != nil {
		t.Errorf("close: %v", err)
	}

	out := filepath.Join(t.TempDir(), "new")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := replica.Restore(t.Context(), cfg, filepath.Join(out, store.DBFile), log); err != nil {
		t.Fatalf("restore: %v", err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, secrets.KeyFile))
	if err := os.WriteFile(filepath.Join(out, secrets.KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	got, done2, err := admin.Open(t.Context(), out, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	defer done2()
	users, _ := got.Users(t.Context())
	if len(users) != 3 {
		t.Fatalf("restored %d users, want 3", len(users))
	}
	// The chain's head file stays on the old box (backup.Install writes a
	// new one; this test restores the bare database).
	if _, err := got.Audit.EnsureAnchor(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rep, err := got.Audit.Verify(t.Context()); err != nil || !rep.OK() {
		t.Fatalf("audit after restore: %v %v", err, rep.Problems)
	}
}

func readLog(s *sftptest.Server) string { b, _ := os.ReadFile(s.Log); return string(b) }

// The console sets replication with a key uploaded into incoming/: it is
// sealed in the store and the plain copy removed; a wrong host key saves
// nothing.
func TestSetReplicaFromAnUploadedKey(t *testing.T) {
	srv := sftptest.Start(t)
	dir := filepath.Join(t.TempDir(), "data")
	if err := admin.Create(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	svc, done, err := admin.Open(t.Context(), dir, "ssh:tech")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	up := filepath.Join(dir, admin.IncomingDir, "replica_key")
	if err := os.MkdirAll(filepath.Dir(up), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(up, srv.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	in := admin.ReplicaInput{Target: srv.Target("c"), KeyFile: "replica_key", HostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
	if _, err := svc.SetReplica(t.Context(), in); err == nil {
		t.Fatal("a wrong host key was accepted")
	}
	if _, ok, _ := svc.ReplicaSettings(t.Context()); ok {
		t.Fatal("a refused setting was saved")
	}
	in.HostKey = srv.HostFingerprint
	r, err := svc.SetReplica(t.Context(), in)
	if err != nil {
		t.Fatalf("set: %v\n%s", err, readLog(srv))
	}
	if r.HostKey != srv.HostKey || r.Auth != "key" {
		t.Errorf("settings %+v", r)
	}
	if _, err := os.Stat(up); err == nil {
		t.Error("the uploaded key was left in incoming/")
	}
	cfg, _, ok, err := svc.ReplicaConfig(t.Context())
	if err != nil || !ok || string(cfg.Cred.Key) != string(srv.KeyPEM) {
		t.Fatalf("config: ok %v, %v", ok, err)
	}
	raw, _ := svc.Store.Setting(t.Context(), admin.ReplicaSettingKey)
	if strings.Contains(raw, "PRIVATE KEY") {
		t.Fatal("the key is stored in the clear")
	}
	if err := svc.ReplicaOff(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := svc.ReplicaSettings(t.Context()); ok {
		t.Fatal("replication still on after off")
	}
}

// The first-boot wizard's restore from the replica (no shell on the new
// appliance): the key from a backup uploaded into incoming/, the database
// from the replica, checked while the fresh appliance runs and installed
// at its next start, with every change replicated after the backup.
func TestWizardStagesARestoreFromTheReplica(t *testing.T) {
	srv := sftptest.Start(t)
	ctx := t.Context()
	tg, _ := replica.ParseTarget(srv.Target("wiz"))
	old := filepath.Join(t.TempDir(), "old")
	if err := admin.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	svc, done, err := admin.Open(ctx, old, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := replica.Config{Target: tg, HostKey: srv.HostKey, Cred: replica.Credentials{Key: srv.KeyPEM}, SyncInterval: 200 * time.Millisecond}
	r, err := replica.Start(ctx, filepath.Join(old, store.DBFile), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	bf, err := svc.CreateBackup(ctx, secrets.Secret("a long passphrase"), admin.BackupOptions{WorkFactor: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddUser(ctx, admin.NewUser{Name: "after-the-backup"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	done()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}

	fresh := filepath.Join(t.TempDir(), "fresh")
	if err := admin.Create(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(fresh, admin.IncomingDir)
	if err := os.MkdirAll(in, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(bf.Path)
	for name, data := range map[string][]byte{"old.cgbackup": b, "replica_key": srv.KeyPEM} {
		if err := os.WriteFile(filepath.Join(in, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wiz, done2, err := admin.Open(ctx, fresh, "ssh:tech")
	if err != nil {
		t.Fatal(err)
	}
	ri := admin.ReplicaInput{Target: srv.Target("wiz"), KeyFile: "replica_key", HostKey: srv.HostFingerprint}
	if _, err := wiz.StageRestoreFromReplica(ctx, ri, "old.cgbackup", secrets.Secret("not it at all")); !errors.Is(err, admin.ErrInvalid) || backup.Pending(fresh) {
		t.Fatalf("a wrong passphrase: %v (pending %v)", err, backup.Pending(fresh))
	}
	if _, err := wiz.StageRestoreFromReplica(ctx, ri, "old.cgbackup", secrets.Secret("a long passphrase")); err != nil {
		t.Fatalf("stage: %v\n%s", err, readLog(srv))
	}
	done2()
	if ok, err := backup.InstallPending(ctx, fresh, backup.RestoreOptions{Actor: "daemon"}); !ok || err != nil {
		t.Fatalf("install: %v %v", ok, err)
	}
	got, done3, err := admin.Open(ctx, fresh, "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	defer done3()
	users, _ := got.Users(ctx)
	if len(users) != 1 || users[0].Name != "after-the-backup" {
		t.Fatalf("restored users %v, want the one replicated after the backup", users)
	}
	if rep, err := got.Audit.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("audit after the restore: %v %v", err, rep.Problems)
	}
}
