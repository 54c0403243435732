package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/ldapproxy"
)

// TestPrivateFilesFixedAtStart: a data directory open to others and
// private files readable by others (a restore with a careless umask) are
// fixed before anything is read, and each fix is logged.
func TestPrivateFilesFixedAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	for _, f := range []string{store.DBFile, secrets.KeyFile, ldapproxy.KeyFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ldap-cert.pem"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if err := fixPermissions(dir, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o770 {
		t.Errorf("directory mode %04o, want 0770 (others' bits gone)", st.Mode().Perm())
	}
	for _, f := range []string{store.DBFile, secrets.KeyFile, ldapproxy.KeyFile} {
		if st, _ := os.Stat(filepath.Join(dir, f)); st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o, want 0600", f, st.Mode().Perm())
		}
		if !strings.Contains(logs.String(), f) {
			t.Errorf("the fix of %s is not logged:\n%s", f, logs.String())
		}
	}
	// A certificate is public: left alone.
	if st, _ := os.Stat(filepath.Join(dir, "ldap-cert.pem")); st.Mode().Perm() != 0o644 {
		t.Errorf("the certificate's mode was changed to %04o", st.Mode().Perm())
	}
	// A symlink in place of a private file is refused.
	os.Remove(filepath.Join(dir, secrets.KeyFile))
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, secrets.KeyFile)); err != nil {
		t.Fatal(err)
	}
	if err := fixPermissions(dir, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a symlinked key file: %v", err)
	}
}
