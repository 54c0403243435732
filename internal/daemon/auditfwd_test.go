package daemon

import (
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
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

// TestTornHeadRecordRepairedAtStart: a power cut in the middle of a head
// file write tears one of its two records; the daemon starts, names it
// in the audit (not as a rollback), and the log verifies again.
func TestTornHeadRecordRepairedAtStart(t *testing.T) {
	cfg := loopback(t)
	d := open(t, cfg)
	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alice", "bob"} {
		if err := svc.AddUser(t.Context(), admin.NewUser{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	p := filepath.Join(cfg.DataDir, audit.AnchorFile)
	b, err := os.ReadFile(p)
	if err != nil || len(b) != 8192 {
		t.Fatalf("head file: %d bytes, %v", len(b), err)
	}
	// The newer record: the one with the greater generation.
	gen := func(rec []byte) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.SplitN(string(rec), "\n", 3)[1], "gen "))
		return n
	}
	off := 0
	if gen(b[4096:]) > gen(b[:4096]) {
		off = 4096
	}
	clear(b[off+100 : off+4096])
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d = open(t, cfg)
	svc, _ = d.Admin("test")
	rows, err := svc.AuditTail(t.Context(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var repaired bool
	for _, r := range rows {
		if r.Reason == "audit_rollback" {
			t.Errorf("a torn record was reported as a rollback: %+v", r)
		}
		repaired = repaired || (r.Reason == "audit_head_repaired" && strings.Contains(r.Detail, "torn by a power cut"))
	}
	if !repaired {
		t.Fatalf("no audit_head_repaired entry after starting on a torn head file: %+v", rows)
	}
	if n, problems, err := svc.VerifyAudit(t.Context()); err != nil || len(problems) != 0 {
		t.Fatalf("verify after the start (%d entries): %q, %v", n, problems, err)
	}
}
