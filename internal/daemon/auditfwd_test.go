package daemon

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/clinicgate/clinicgate/appliance/admin"
	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// TestRolledBackDatabaseReportedAtStart: a daemon started on a database
// put back behind the audit head file says so at once, in the audit (and
// so to the collector), not only at the next verify.
func TestRolledBackDatabaseReportedAtStart(t *testing.T) {
	cfg := loopback(t)
	d := open(t, cfg)
	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.AddUser(t.Context(), admin.NewUser{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(cfg.DataDir, store.DBFile)
	old := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`VACUUM INTO '` + old + `'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := svc.AddUser(t.Context(), admin.NewUser{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, audit.AnchorFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("head file: %v, %v; want it 0600", fi, err)
	}
	b, err := os.ReadFile(old)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dbPath + "-wal")
	os.Remove(dbPath + "-shm")
	if err := os.WriteFile(dbPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d = open(t, cfg)
	svc, _ = d.Admin("test")
	rows, err := svc.AuditTail(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	last := rows[len(rows)-1]
	if last.Reason != "audit_rollback" || !strings.Contains(last.Detail, "put back to an older copy") {
		t.Fatalf("last entry after starting on the old copy: got %+v, want an audit_rollback entry", last)
	}
}
