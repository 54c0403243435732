package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/backup"
	"github.com/clinicgate/clinicgate/appliance/replica"
	"github.com/clinicgate/clinicgate/appliance/secrets"
)

// BackupDir is the directory of the data directory that holds the backups
// made on the appliance; the console's SFTP serves it read-only.
const BackupDir = "backups"

// IncomingDir is the directory of the data directory that the console's
// SFTP lets admins upload into: a backup to restore, an update.
const IncomingDir = "incoming"

// KeepBackups is how many backups BackupDir keeps: the oldest go when a
// new one is made, so a daily backup cannot fill the disk.
const KeepBackups = 10

// BackupFile is one backup file.
type BackupFile struct {
	Name    string
	Path    string
	Size    int64
	Created time.Time
}

// BackupOptions tune CreateBackup.
type BackupOptions struct {
	// Out writes the backup to this file (a USB stick) instead of
	// BackupDir; it must not exist.
	Out string
	// Version is stamped into the manifest.
	Version string
	// WorkFactor is scrypt's log2(N) (0: the default; tests lower it).
	WorkFactor int
}

// CreateBackup writes an encrypted backup of the store and its key, under
// pass, while the daemon keeps running: a snapshot of the database
// (store.SnapshotTo) and the key file, in one age file that only pass
// opens. The passphrase goes nowhere else: not into the audit, not into a
// log, not into the store.
func (s *Service) CreateBackup(ctx context.Context, pass secrets.Secret, opts BackupOptions) (BackupFile, error) {
	if err := backup.CheckPassphrase(pass); err != nil {
		return BackupFile{}, invalid("%s", strings.TrimPrefix(err.Error(), "backup: "))
	}
	dir := filepath.Join(s.Store.Dir(), BackupDir)
	out := opts.Out
	if out == "" {
		if err := ensurePrivateDir(dir); err != nil {
			return BackupFile{}, err
		}
		now := s.Now()
		out = filepath.Join(dir, backup.Name(now))
		for i := 1; exists(out); i++ {
			out = filepath.Join(dir, strings.TrimSuffix(backup.Name(now), backup.Ext)+fmt.Sprintf("-%d", i)+backup.Ext)
		}
	} else if exists(out) {
		return BackupFile{}, invalid("%s exists already; give a new file name", out)
	}
	// The snapshot is written next to its backup (the same private
	// directory or the operator's own) and removed at once.
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), ".snapshot-")
	if err != nil {
		return BackupFile{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	snap := filepath.Join(tmpDir, "snapshot.db")
	if err := s.Store.SnapshotTo(ctx, snap); err != nil {
		return BackupFile{}, err
	}
	m := backup.Manifest{Created: s.Now().UTC(), Version: opts.Version}
	if m.Schema, err = s.Store.SchemaVersion(ctx); err != nil {
		return BackupFile{}, err
	}
	if m.AuditSeq, _, err = s.Store.AuditHead(ctx); err != nil {
		return BackupFile{}, err
	}
	tmp := filepath.Join(tmpDir, "backup"+backup.Ext)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return BackupFile{}, fmt.Errorf("backup: %w", err)
	}
	err = backup.Write(f, pass, snap, filepath.Join(s.Store.Dir(), secrets.KeyFile), m, backup.Options{WorkFactor: opts.WorkFactor})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BackupFile{}, err
	}
	if err := os.Link(tmp, out); err != nil {
		// Link, not rename: it never replaces a file that appeared
		// meanwhile.
		return BackupFile{}, fmt.Errorf("backup: %w", err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return BackupFile{}, fmt.Errorf("backup: %w", err)
	}
	bf := BackupFile{Name: filepath.Base(out), Path: out, Size: fi.Size(), Created: m.Created}
	e := audit.Entry{Kind: audit.KindAdmin, Actor: s.Actor, Outcome: "changed", Reason: "backup_create",
		Detail: fmt.Sprintf("encrypted backup %s written (%d bytes, audit up to entry %d)", out, fi.Size(), m.AuditSeq)}
	if _, err := s.Audit.Append(ctx, e); err != nil {
		// A backup nobody can account for is not kept.
		os.Remove(out)
		return BackupFile{}, err
	}
	if opts.Out == "" {
		s.pruneBackups(dir)
	}
	return bf, nil
}

// Backups lists the backups in BackupDir, the newest first.
func (s *Service) Backups(ctx context.Context) ([]BackupFile, error) {
	dir := filepath.Join(s.Store.Dir(), BackupDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []BackupFile
	for _, e := range ents {
		if !e.Type().IsRegular() || !backup.IsBackupName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, BackupFile{Name: e.Name(), Path: filepath.Join(dir, e.Name()), Size: fi.Size(), Created: fi.ModTime()})
	}
	slices.SortFunc(out, func(a, b BackupFile) int { return strings.Compare(b.Name, a.Name) })
	return out, nil
}

// pruneBackups keeps the KeepBackups newest backups.
func (s *Service) pruneBackups(dir string) {
	list, err := s.Backups(context.Background())
	if err != nil || len(list) <= KeepBackups {
		return
	}
	for _, b := range list[KeepBackups:] {
		os.Remove(filepath.Join(dir, b.Name))
	}
}

// ensurePrivateDir makes dir 0700 (or makes it so).
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return os.Chmod(dir, 0o700)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// StageRestore restores a backup onto this appliance from its first-boot
// wizard: file is the name of a file uploaded into IncomingDir over SFTP,
// or an absolute path (a USB stick). Only a fresh appliance (no users, no
// clients) is restored; the backup is decrypted and checked completely
// now, and the daemon puts it in place when it starts again, which it
// does within seconds.
// It returns when the backup was made.
func (s *Service) StageRestore(ctx context.Context, file string, pass secrets.Secret) (time.Time, error) {
	m, err := s.stageRestore(ctx, file, pass)
	return m.Created, err
}

func (s *Service) stageRestore(ctx context.Context, file string, pass secrets.Secret) (backup.Manifest, error) {
	if err := s.mustBeFresh(ctx); err != nil {
		return backup.Manifest{}, err
	}
	f, p, err := s.openUploaded(file)
	if err != nil {
		return backup.Manifest{}, err
	}
	defer f.Close()
	m, err := backup.StagePending(ctx, f, pass, s.Store.Dir())
	if err := restoreErr(err); err != nil {
		return m, err
	}
	return m, s.auditStaged(ctx, fmt.Sprintf("backup %s (made %s)", filepath.Base(p), m.Created.Format(time.RFC3339)))
}

// StageRestoreFromReplica is StageRestore for the newest state of an
// off-box replica (in: where, and its login, as for SetReplica), with the
// sealing key from the encrypted backup keyBackup (uploaded into
// IncomingDir, or a path on a USB stick) opened by pass.
func (s *Service) StageRestoreFromReplica(ctx context.Context, in ReplicaInput, keyBackup string, pass secrets.Secret) (time.Time, error) {
	if err := s.mustBeFresh(ctx); err != nil {
		return time.Time{}, err
	}
	t, err := replica.ParseTarget(in.Target)
	if err != nil {
		return time.Time{}, invalid("%s", err.Error())
	}
	cred := replica.Credentials{Key: in.Key, Password: in.Password}
	var keyPath string
	if in.KeyFile != "" {
		f, kp, err := s.openUploaded(in.KeyFile)
		keyPath = kp
		if err != nil {
			return time.Time{}, err
		}
		cred.Key, err = readSmall(f.Name())
		f.Close()
		if err != nil {
			return time.Time{}, err
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	hk, fp, err := replica.Probe(pctx, t, cred, in.HostKey)
	cancel()
	if err != nil {
		return time.Time{}, invalid("%s; nothing changed", err.Error())
	}
	kb, p, err := s.openUploaded(keyBackup)
	if err != nil {
		return time.Time{}, err
	}
	defer kb.Close()
	cfg := replica.Config{Target: t, HostKey: hk, Cred: cred}
	fetch := func(ctx context.Context, dbPath string) error {
		return replica.Restore(ctx, cfg, dbPath, slog.New(slog.DiscardHandler))
	}
	m, err := backup.StagePendingFromReplica(ctx, kb, pass, fetch, s.Store.Dir())
	if err := restoreErr(err); err != nil {
		return time.Time{}, err
	}
	if keyPath != "" {
		// The restored store holds the replica's login sealed; the
		// plain copy goes.
		_ = os.Remove(keyPath)
	}
	return time.Now(), s.auditStaged(ctx, fmt.Sprintf("the off-box replica %s (host key %s), with the key from backup %s (made %s)", t, fp, filepath.Base(p), m.Created.Format(time.RFC3339)))
}

func (s *Service) mustBeFresh(ctx context.Context) error {
	fresh, err := s.Fresh(ctx)
	if err != nil {
		return err
	}
	if !fresh {
		return invalid("this appliance already has users or clients: a restore would replace them; restore onto a fresh appliance (or from the command line with --force)")
	}
	return nil
}

// openUploaded opens a file uploaded into IncomingDir (a bare name) or
// at an absolute path (a USB stick).
func (s *Service) openUploaded(file string) (*os.File, string, error) {
	file = strings.TrimSpace(file)
	p := file
	if !filepath.IsAbs(file) {
		if file == "" || strings.ContainsAny(file, "/\\") || strings.HasPrefix(file, ".") {
			return nil, "", invalid("give the name of a file in %s/ (uploaded over SFTP) or a full path on a USB stick", IncomingDir)
		}
		p = filepath.Join(s.Store.Dir(), IncomingDir, file)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, "", invalid("cannot open %s: %v", p, errors.Unwrap(err))
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, "", invalid("%s is not a file", p)
	}
	return f, p, nil
}

func restoreErr(err error) error {
	if errors.Is(err, backup.ErrPassphrase) || errors.Is(err, backup.ErrDamaged) {
		return invalid("%s", strings.TrimPrefix(err.Error(), "backup: "))
	}
	return err
}

func (s *Service) auditStaged(ctx context.Context, what string) error {
	_, err := s.Audit.Append(ctx, audit.Entry{Kind: audit.KindAdmin, Actor: s.Actor, Outcome: "changed", Reason: "backup_restore_staged",
		Detail: what + " checked; it replaces this fresh store when the daemon starts again"})
	return err
}

// AuditSFTP records a file an admin fetched from or left on the appliance
// over the console's SFTP (a backup leaving the box holds every password
// hash).
func (s *Service) AuditSFTP(ctx context.Context, adminName, action, file string) error {
	_, err := s.Audit.Append(ctx, audit.Entry{Kind: audit.KindAdmin, Actor: "ssh:" + adminName, Outcome: "ok", Reason: "sftp_" + action,
		Detail: "over SFTP: " + action + " " + file})
	return err
}
