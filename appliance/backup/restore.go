package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// ErrNotFresh means the target data directory already holds a store.
var ErrNotFresh = errors.New("backup: the data directory already holds a clinicgate store")

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force restores over an existing store, which is moved aside into
	// replaced-TIME/ inside the data directory (never deleted).
	Force bool
	// Now stamps the audit entry and the replaced-TIME directory.
	Now func() time.Time
	// Actor names who restored, for the audit ("cli:root").
	Actor string
	// From says where the backup came from, for the audit.
	From string
}

// Restore decrypts the backup r with pass and puts its store and key into
// dir. Everything is checked in a staging directory beside dir first —
// the passphrase, every chunk's authentication, the checksums, SQLite's
// integrity check, the key opening the database and the audit chain — so a
// wrong passphrase or a damaged file leaves dir as it was. The caller must
// hold the data directory's lock (no daemon may run on it).
func Restore(ctx context.Context, r io.Reader, pass secrets.Secret, dir string, opts RestoreOptions) (Manifest, error) {
	abs, stage, m, err := stageBackup(dir, opts, r, pass)
	if stage != "" {
		defer os.RemoveAll(stage)
	}
	if err != nil {
		return m, err
	}
	if err := Verify(ctx, stage); err != nil {
		return m, err
	}
	if err := Install(ctx, stage, abs, opts, fmt.Sprintf("restored from a backup made %s (%s)", m.Created.UTC().Format(time.RFC3339), opts.From)); err != nil {
		return m, err
	}
	return m, nil
}

// stageBackup is the start both restores share: dir made absolute and
// checked as a target, a staging directory beside it (the caller removes
// it when stage is not empty), and the backup r decrypted into it.
func stageBackup(dir string, opts RestoreOptions, r io.Reader, pass secrets.Secret) (abs, stage string, m Manifest, err error) {
	if abs, err = filepath.Abs(dir); err != nil {
		return "", "", m, err
	}
	if err = CheckTarget(abs, opts.Force); err != nil {
		return abs, "", m, err
	}
	if stage, err = Stage(abs); err != nil {
		return abs, "", m, err
	}
	m, err = Extract(r, pass, stage)
	return abs, stage, m, err
}

// CheckTarget refuses a data directory that holds a store or a key,
// unless force.
func CheckTarget(dir string, force bool) error {
	if force {
		return nil
	}
	for _, name := range []string{store.DBFile, secrets.KeyFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w (%s): restore onto a new, empty data directory, or add --force to move the current store aside into %s/replaced-TIME/", ErrNotFresh, filepath.Join(dir, name), dir)
		}
	}
	return nil
}

// Stage makes a private staging directory beside dir (the same file
// system, so Install only renames).
func Stage(dir string) (string, error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	stage, err := os.MkdirTemp(parent, ".clinicgate-restore-")
	if err != nil {
		return "", fmt.Errorf("backup: staging directory: %w", err)
	}
	return stage, nil
}

// Verify opens the store staged in dir as the daemon would — the key must
// belong to the database, migrations apply — and checks SQLite's
// integrity and the audit chain.
func Verify(ctx context.Context, dir string) error {
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		return fmt.Errorf("backup: the restored store does not open: %w", err)
	}
	defer st.Close()
	if err := st.IntegrityCheck(ctx); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	log, err := audit.New(st, nil)
	if err != nil {
		return err
	}
	defer log.Close()
	// The chain's head file (audit.AnchorFile) stays on the old box; here
	// it is written from the snapshot's own head, so the chain itself is
	// what is checked.
	if _, err := log.EnsureAnchor(ctx); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	rep, err := log.Verify(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if !rep.OK() {
		return fmt.Errorf("backup: the audit chain in this backup does not verify: %v", rep.Problems)
	}
	return nil
}

// Install moves the verified store and key in stage into dir (an existing
// store moved aside first when opts.Force), and records the restore in
// the restored audit chain.
func Install(ctx context.Context, stage, dir string, opts RestoreOptions, detail string) error {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The audit chain's head file stays when the backup is this store's
	// own (same key): putting an older copy back is then a rollback the
	// head file goes on naming (audit_rollback), which is the truth. A
	// store of another appliance takes its head file with it.
	if err := moveAside(dir, now(), !sameFile(filepath.Join(dir, secrets.KeyFile), filepath.Join(stage, secrets.KeyFile))); err != nil {
		return err
	}
	// The key first: a database without its key is refused at start,
	// while a key without a database is only half a restore that a second
	// run (with --force) finishes.
	// A -wal file left by the check (normally folded in at close) goes
	// with the database, before it.
	for _, name := range []string{secrets.KeyFile, store.DBFile + "-wal", store.DBFile} {
		err := os.Rename(filepath.Join(stage, name), filepath.Join(dir, name))
		if err != nil && !(name == store.DBFile+"-wal" && errors.Is(err, fs.ErrNotExist)) {
			return fmt.Errorf("backup: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		return fmt.Errorf("backup: the restored store does not open: %w", err)
	}
	defer st.Close()
	log, err := audit.New(st, now)
	if err != nil {
		return err
	}
	defer log.Close()
	if _, err := log.EnsureAnchor(ctx); err != nil {
		return err
	}
	actor := opts.Actor
	if actor == "" {
		actor = "restore"
	}
	_, err = log.Append(ctx, audit.Entry{Kind: audit.KindSystem, Reason: "backup_restore", Actor: actor, Outcome: "changed", Detail: detail})
	return err
}

// moveAside moves an existing store (database, its -wal and -shm, key,
// Litestream's working files) into dir/replaced-TIME/.
func moveAside(dir string, now time.Time, withAnchor bool) error {
	var present []string
	// Litestream's working directory describes the replaced database's
	// positions: left beside the restored one, the replication would
	// resume from a history that is not its own.
	names := []string{store.DBFile, store.DBFile + "-wal", store.DBFile + "-shm", secrets.KeyFile, "." + store.DBFile + "-litestream"}
	if withAnchor {
		names = append(names, audit.AnchorFile)
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			present = append(present, name)
		}
	}
	if len(present) == 0 {
		return nil
	}
	aside := filepath.Join(dir, "replaced-"+now.UTC().Format("20060102-150405"))
	if err := os.Mkdir(aside, 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	for _, name := range present {
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(aside, name)); err != nil {
			return fmt.Errorf("backup: moving the current store aside: %w", err)
		}
	}
	return nil
}

// RestoreFromReplica restores the newest replicated database, fetched by
// fetch into the path it is given, with the sealing key taken from an
// encrypted backup (the replica holds no key): the key must belong to the
// replicated database, and everything is checked as for Restore before
// dir is touched.
func RestoreFromReplica(ctx context.Context, keyBackup io.Reader, pass secrets.Secret, fetch func(ctx context.Context, dbPath string) error, dir string, opts RestoreOptions) (Manifest, error) {
	abs, stage, m, err := stageBackup(dir, opts, keyBackup, pass)
	if stage != "" {
		defer os.RemoveAll(stage)
	}
	if err != nil {
		return m, err
	}
	// The backup's own database gives way to the replica's.
	if err := os.Remove(filepath.Join(stage, store.DBFile)); err != nil {
		return m, err
	}
	if err := fetch(ctx, filepath.Join(stage, store.DBFile)); err != nil {
		return m, err
	}
	// Whatever mode the fetch gave it, the database is private.
	if err := os.Chmod(filepath.Join(stage, store.DBFile), 0o600); err != nil {
		return m, err
	}
	if err := Verify(ctx, stage); err != nil {
		return m, err
	}
	return m, Install(ctx, stage, abs, opts, "restored from the off-box replica "+opts.From)
}

// PendingDir is where a restore chosen in the running appliance's console
// waits, checked, for the daemon's next start (inside the data directory:
// a hardened unit may write nowhere else).
const PendingDir = "restore.pending"

// StagePending decrypts and checks the backup r exactly as Restore does,
// into dataDir/restore.pending, for InstallPending to put in place at the
// daemon's next start: the running daemon holds the store open and cannot
// swap it under itself.
func StagePending(ctx context.Context, r io.Reader, pass secrets.Secret, dataDir string) (Manifest, error) {
	return stagePending(ctx, dataDir, func(tmp string) (Manifest, error) { return Extract(r, pass, tmp) })
}

// StagePendingFromReplica is StagePending for the newest replicated
// database (fetch), with the key from the encrypted backup keyBackup, as
// RestoreFromReplica checks them.
func StagePendingFromReplica(ctx context.Context, keyBackup io.Reader, pass secrets.Secret, fetch func(ctx context.Context, dbPath string) error, dataDir string) (Manifest, error) {
	return stagePending(ctx, dataDir, func(tmp string) (Manifest, error) {
		m, err := Extract(keyBackup, pass, tmp)
		if err != nil {
			return m, err
		}
		db := filepath.Join(tmp, store.DBFile)
		if err := os.Remove(db); err != nil {
			return m, err
		}
		if err := fetch(ctx, db); err != nil {
			return m, err
		}
		return m, os.Chmod(db, 0o600)
	})
}

// stagePending fills a private directory in dataDir, checks it, and makes
// it the pending restore.
func stagePending(ctx context.Context, dataDir string, fill func(tmp string) (Manifest, error)) (Manifest, error) {
	tmp, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	m, err := fill(tmp)
	if err != nil {
		return m, err
	}
	if err := Verify(ctx, tmp); err != nil {
		return m, err
	}
	dst := filepath.Join(dataDir, PendingDir)
	if err := os.RemoveAll(dst); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	return m, nil
}

// Pending reports whether a checked restore waits in dataDir.
func Pending(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, PendingDir, store.DBFile))
	return err == nil
}

// InstallPending puts a restore staged by StagePending in place, the
// current store moved aside into replaced-TIME/. The caller holds the data
// directory's lock and has not opened the store. It does nothing when no
// restore waits.
func InstallPending(ctx context.Context, dataDir string, opts RestoreOptions) (bool, error) {
	if !Pending(dataDir) {
		return false, nil
	}
	pending := filepath.Join(dataDir, PendingDir)
	opts.Force = true
	if err := Install(ctx, pending, dataDir, opts, "restored from a backup chosen in the console's first-boot wizard"); err != nil {
		return false, err
	}
	return true, os.RemoveAll(pending)
}

// sameFile reports whether the files at a and b both exist and hold the
// same bytes.
func sameFile(a, b string) bool {
	x, err := os.ReadFile(a)
	if err != nil {
		return false
	}
	y, err := os.ReadFile(b)
	return err == nil && string(x) == string(y)
}
