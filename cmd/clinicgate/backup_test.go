package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/clinicgate/clinicgate/internal/daemon"
)

const backupPass = "a long enough backup passphrase"

func TestBackupCreateAndRestoreFromTheCommandLine(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "pw-alice-12345\n", "user", "add", "alice", "--password-stdin")
	if out, err := cg(t, data, "short\n", "backup", "create"); err == nil || !strings.Contains(out, "at least 12") {
		t.Fatalf("a short passphrase: %v\n%s", err, out)
	}
	out := mustCG(t, data, backupPass+"\n", "backup", "create")
	m := regexp.MustCompile(`backup written: (\S+)`).FindStringSubmatch(out)
	if m == nil || filepath.Dir(m[1]) != filepath.Join(data, "backups") {
		t.Fatalf("backup create printed:\n%s", out)
	}
	if list := mustCG(t, data, "", "backup", "list"); !strings.Contains(list, filepath.Base(m[1])) {
		t.Errorf("backup list:\n%s", list)
	}

	target := filepath.Join(t.TempDir(), "restored")
	if out, err := cg(t, target, "wrong passphrase here\n", "backup", "restore", m[1]); err == nil || !strings.Contains(out, "passphrase does not open") {
		t.Fatalf("wrong passphrase: %v\n%s", err, out)
	}
	// A daemon on the target (its lock) stops the restore.
	release, err := daemon.LockDir(target)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cg(t, target, backupPass+"\n", "backup", "restore", m[1]); err == nil || !strings.Contains(out, "already running") {
		t.Fatalf("restore beside a daemon: %v\n%s", err, out)
	}
	release()
	mustCG(t, target, backupPass+"\n", "backup", "restore", m[1])
	if users := mustCG(t, target, "", "user", "list"); !strings.Contains(users, "alice") {
		t.Errorf("restored users:\n%s", users)
	}
	if v := mustCG(t, target, "", "audit", "verify"); !strings.Contains(v, "chain unbroken") {
		t.Errorf("audit verify after restore:\n%s", v)
	}
	// The restored directory holds a store now: a second restore needs --force.
	if out, err := cg(t, target, backupPass+"\n", "backup", "restore", m[1]); err == nil || !strings.Contains(out, "--force") {
		t.Fatalf("restore over a store: %v\n%s", err, out)
	}
	mustCG(t, target, backupPass+"\n", "backup", "restore", m[1], "--force")
}
