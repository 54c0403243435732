// Package backup writes and reads clinicgate's encrypted backups: one file
// holding a consistent snapshot of the store and its sealing key, encrypted
// with age under a passphrase the operator types (scrypt), and restores one
// onto a fresh data directory.
//
// It must never write or log the passphrase, and never write into the
// target data directory before the whole archive has been decrypted,
// authenticated and checked (hashes, SQLite's integrity check, the key
// opening the store, the audit chain verifying).
package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// Ext is a backup file's extension.
const Ext = ".cgbackup"

// Format is the archive layout this package writes (manifest.format).
const Format = 1

// MinPassphrase is the shortest passphrase accepted: the archive holds the
// sealing key, so the passphrase is all that protects every stored secret
// of a backup that leaves the box.
const MinPassphrase = 12

// The archive's members, in this order.
const (
	memberManifest = "manifest.json"
	memberKey      = secrets.KeyFile
	memberDB       = store.DBFile
)

// Bounds on what an archive may hold, so a hostile file cannot fill the
// disk or memory before its hashes are checked.
const (
	maxManifest = 64 << 10
	maxKey      = 4 << 10
	maxDB       = 8 << 30
)

var (
	// ErrPassphrase means the passphrase does not open the archive.
	ErrPassphrase = errors.New("backup: the passphrase does not open this backup")
	// ErrDamaged means the archive is not a complete, unaltered backup.
	ErrDamaged = errors.New("backup: the file is not a complete clinicgate backup (damaged, cut short or altered)")
	// ErrWeakPassphrase means the passphrase was refused before use.
	ErrWeakPassphrase = errors.New("backup: passphrase refused")
)

// CheckPassphrase refuses a passphrase too short or not plain text.
func CheckPassphrase(p secrets.Secret) error {
	switch {
	case utf8.RuneCount(p) < MinPassphrase:
		return fmt.Errorf("%w: it must be at least %d characters (a few words are easiest to type and remember)", ErrWeakPassphrase, MinPassphrase)
	case len(p) > 1024:
		return fmt.Errorf("%w: it is longer than 1024 bytes", ErrWeakPassphrase)
	case !utf8.Valid(p):
		return fmt.Errorf("%w: it is not valid text (UTF-8)", ErrWeakPassphrase)
	case bytes.ContainsFunc(p, unicode.IsControl):
		return fmt.Errorf("%w: it contains control characters (a stray newline?)", ErrWeakPassphrase)
	}
	return nil
}

// Manifest describes a backup; it is stored inside the encryption, so an
// archive whose passphrase is unknown reveals nothing but its size.
type Manifest struct {
	Format  int       `json:"format"`
	Created time.Time `json:"created"`
	// Version is the clinicgate that wrote it ("" when unknown).
	Version string `json:"version,omitempty"`
	// Schema is the newest migration the database had.
	Schema    int    `json:"schema"`
	DBSize    int64  `json:"db_size"`
	DBSHA256  string `json:"db_sha256"`
	KeySHA256 string `json:"key_sha256"`
	// AuditSeq is the last audit entry in the snapshot.
	AuditSeq int64 `json:"audit_seq"`
}

// Options tune Write.
type Options struct {
	// WorkFactor is scrypt's log2(N) (0: DefaultWorkFactor). Tests lower
	// it.
	WorkFactor int
}

// DefaultWorkFactor is 2^16: scrypt then takes 64 MiB. age's own default
// (2^18) takes 256 MiB, which a backup made from the console over SSH —
// inside the daemon, whose unit caps it at 256 MiB — cannot have on a
// Raspberry Pi. The 12-character minimum passphrase carries the strength;
// a backup made with a larger factor still opens.
const DefaultWorkFactor = 16

// Write encrypts the snapshot at dbPath and the key at keyPath under pass
// into w. m's hashes and sizes are filled in here.
func Write(w io.Writer, pass secrets.Secret, dbPath, keyPath string, m Manifest, opts Options) error {
	if err := CheckPassphrase(pass); err != nil {
		return err
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("backup: read the key: %w", err)
	}
	db, err := os.Open(dbPath)
	if err != nil {
		return fmt.Errorf("backup: read the snapshot: %w", err)
	}
	defer db.Close()
	fi, err := db.Stat()
	if err != nil {
		return fmt.Errorf("backup: read the snapshot: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, db); err != nil {
		return fmt.Errorf("backup: read the snapshot: %w", err)
	}
	if _, err := db.Seek(0, io.SeekStart); err != nil {
		return err
	}
	ks := sha256.Sum256(key)
	m.Format, m.DBSize, m.DBSHA256, m.KeySHA256 = Format, fi.Size(), hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(ks[:])
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}

	rcpt, err := age.NewScryptRecipient(string(pass))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	wf := opts.WorkFactor
	if wf <= 0 {
		wf = DefaultWorkFactor
	}
	rcpt.SetWorkFactor(wf)
	enc, err := age.Encrypt(w, rcpt)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tw := tar.NewWriter(enc)
	put := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = fmt.Errorf("%s changed while it was copied", name)
		}
		return err
	}
	if err := put(memberManifest, int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := put(memberKey, int64(len(key)), bytes.NewReader(key)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := put(memberDB, fi.Size(), db); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// Extract decrypts the archive r with pass into dir (which must exist and
// should be a private staging directory), and checks each member against
// the manifest. Nothing is left in dir when it fails.
func Extract(r io.Reader, pass secrets.Secret, dir string) (m Manifest, err error) {
	id, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	dec, err := age.Decrypt(r, id)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) || errors.Is(err, age.ErrIncorrectIdentity) {
			return m, ErrPassphrase
		}
		return m, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	written := []string{}
	defer func() {
		if err != nil {
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()
	tr := tar.NewReader(dec)
	next := func(want string, limit int64) (*tar.Header, error) {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		if hdr.Name != want || hdr.Typeflag != tar.TypeReg || hdr.Size < 0 || hdr.Size > limit {
			return nil, fmt.Errorf("%w: unexpected member %q", ErrDamaged, hdr.Name)
		}
		return hdr, nil
	}
	if _, err := next(memberManifest, maxManifest); err != nil {
		return m, err
	}
	mb, err := io.ReadAll(tr)
	if err != nil {
		return m, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return m, fmt.Errorf("%w: manifest: %v", ErrDamaged, err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("backup: this backup has format %d, this clinicgate reads format %d; restore it with a matching version", m.Format, Format)
	}
	copyTo := func(name string, limit int64, want string) error {
		if _, err := next(name, limit); err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		written = append(written, p)
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(f, h), tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrDamaged, name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return fmt.Errorf("%w: %s does not match its checksum", ErrDamaged, name)
		}
		return nil
	}
	if err := copyTo(memberKey, maxKey, m.KeySHA256); err != nil {
		return m, err
	}
	if err := copyTo(memberDB, maxDB, m.DBSHA256); err != nil {
		return m, err
	}
	if _, err := tr.Next(); err != io.EOF {
		return m, fmt.Errorf("%w: unexpected data after the database", ErrDamaged)
	}
	// age authenticates each chunk and the end of the stream: read it to
	// the end so a cut or altered tail is found now, not never.
	if _, err := io.Copy(io.Discard, dec); err != nil {
		return m, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	return m, nil
}

// Name is a backup file's name for a time: sorting names sorts by time.
func Name(t time.Time) string {
	return "clinicgate-" + t.UTC().Format("20060102-150405") + Ext
}

// IsBackupName reports whether name looks like a file Name made.
func IsBackupName(name string) bool {
	return strings.HasPrefix(name, "clinicgate-") && strings.HasSuffix(name, Ext)
}
