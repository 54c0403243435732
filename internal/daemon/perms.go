package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/eap"
	"github.com/clinicgate/clinicgate/ldapproxy"
	"github.com/clinicgate/clinicgate/tui"
)

// privateFiles are the data directory's files that hold secrets or
// password hashes: the database and its journal, the key file, the TLS
// and SSH private keys.
var privateFiles = []string{
	store.DBFile, store.DBFile + "-wal", store.DBFile + "-shm", secrets.KeyFile,
	ldapproxy.KeyFile, eap.KeyFile, tui.HostKeyFile, LockFile, audit.AnchorFile,
}

// fixPermissions makes the data directory and its private files
// unreadable to others before anything is read from them, and says so
// for each one it changed (issue 16: the daemon started with the database
// at 0644 and the directory at 0777). A restore from a backup, or a copy
// made with a careless umask, is the usual cause. It changes only what
// others could read or write; the owner's and the group's bits on the
// directory stay.
func fixPermissions(dir string, log *slog.Logger) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a first start: the store creates it 0750
	}
	if err != nil {
		return err
	}
	if mode := st.Mode().Perm(); mode&0o007 != 0 {
		if err := os.Chmod(dir, mode&^0o007); err != nil {
			return fmt.Errorf("data directory %s is open to others (mode %04o) and cannot be fixed: %w", dir, mode, err)
		}
		log.Warn("the data directory was open to others; fixed", "path", dir, "was", fmt.Sprintf("%04o", mode), "now", fmt.Sprintf("%04o", mode&^0o007))
	}
	for _, name := range privateFiles {
		p := filepath.Join(dir, name)
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%s): refusing to start", p, st.Mode().Type())
		}
		if mode := st.Mode().Perm(); mode&0o077 != 0 {
			// Only the group's and others' bits go: a file the owner
			// made read-only stays read-only (and is refused as such).
			if err := os.Chmod(p, mode&^0o077); err != nil {
				return fmt.Errorf("%s is readable by others (mode %04o) and cannot be fixed: %w", p, mode, err)
			}
			log.Warn("a private file was readable by others; fixed", "path", p, "was", fmt.Sprintf("%04o", mode), "now", fmt.Sprintf("%04o", mode&^0o077))
		}
	}
	return nil
}
