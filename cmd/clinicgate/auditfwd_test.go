package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/auditfwd/auditfwdtest"
)

func TestAuditForwardSetShowOff(t *testing.T) {
	data := newData(t)
	if out := mustCG(t, data, "", "audit", "forward", "show"); !strings.Contains(out, "not set up") {
		t.Fatalf("show before set:\n%s", out)
	}
	dir := t.TempDir()
	ca := auditfwdtest.NewCA(t, "Clinic Syslog CA")
	cert, key := ca.Issue(t, "gw")
	for name, b := range map[string][]byte{"ca.pem": ca.CertPEM, "c.pem": cert, "k.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range [][]string{
		{"--address", "syslog:6514"},
		{"--ca", filepath.Join(dir, "ca.pem")},
		{"--address", "syslog:6514", "--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, "c.pem")},
		{"--address", "syslog", "--ca", filepath.Join(dir, "ca.pem")},
	} {
		if out, err := cg(t, data, "", append([]string{"audit", "forward", "set"}, bad...)...); err == nil {
			t.Errorf("forward set %q: got success\n%s", bad, out)
		}
	}
	out := mustCG(t, data, "", "audit", "forward", "set", "--address", "syslog.clinic.lan:6514", "--ca", filepath.Join(dir, "ca.pem"),
		"--cert", filepath.Join(dir, "c.pem"), "--key", filepath.Join(dir, "k.pem"))
	if strings.Contains(out, "PRIVATE") {
		t.Fatalf("set printed the key:\n%s", out)
	}
	out = mustCG(t, data, "", "audit", "forward", "show")
	for _, want := range []string{"forwarding:  on", "syslog.clinic.lan:6514 (TLS)", "CN=Clinic Syslog CA", "client cert: CN=gw", "the daemon has not reported", "lag:"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	mustCG(t, data, "", "audit", "forward", "off")
	if out := mustCG(t, data, "", "audit", "forward", "show"); !strings.Contains(out, "forwarding:  off") {
		t.Errorf("show after off:\n%s", out)
	}
}

func TestAuditExportThenVerifyAgainst(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "correct horse battery", "user", "add", "alice", "--password-stdin")
	copyFile := filepath.Join(t.TempDir(), "audit.export")
	mustCG(t, data, "", "audit", "export", "--out", copyFile)
	if fi, err := os.Stat(copyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	mustCG(t, data, "pw2 pw2 pw2 pw2", "user", "add", "bob", "--password-stdin")
	out := mustCG(t, data, "", "audit", "verify", "--against", copyFile)
	if !strings.Contains(out, "chain unbroken") || !strings.Contains(out, "newer than the copy") {
		t.Fatalf("verify --against:\n%s", out)
	}
	// Everything after the export removed (and the head record with it):
	// "0 entries" is not an answer the copy lets pass.
	db := openTestDB(t, data)
	if _, err := db.Exec(`DELETE FROM audit`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, err := cg(t, data, "", "audit", "verify", "--against", copyFile)
	if err == nil || !strings.Contains(out, "the log was wiped") || !strings.Contains(out, "from entry 1 on") {
		t.Fatalf("verify --against a wiped log: got %v\n%s", err, out)
	}
}

func TestAuditRetentionCommand(t *testing.T) {
	data := newData(t)
	if out := mustCG(t, data, "", "audit", "retention"); !strings.Contains(out, "kept for 6y") {
		t.Fatalf("default:\n%s", out)
	}
	if out := mustCG(t, data, "", "audit", "retention", "7y"); !strings.Contains(out, "kept for 7y") {
		t.Fatalf("set:\n%s", out)
	}
	if out, err := cg(t, data, "", "audit", "retention", "5d"); err == nil {
		t.Fatalf("5d accepted:\n%s", out)
	}
	tail := mustCG(t, data, "", "audit", "tail")
	if !strings.Contains(tail, `audit.retention = \"7y\"`) {
		t.Errorf("the change is not in the audit:\n%s", tail)
	}
}

// openTestDB opens the data directory's database directly, as someone
// with file access could.
func openTestDB(t *testing.T, data string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(data, "clinicgate.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	return db
}
