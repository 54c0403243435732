package tui_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/clinicgate/clinicgate/tui"
)

type keys map[string]string

func (k keys) AdminForKey(_ context.Context, fp string) (string, bool, error) {
	n, ok := k[fp]
	return n, ok, nil
}

// auditedKeys also records the transfers, or fails to.
type auditedKeys struct {
	keys
	mu   sync.Mutex
	got  []string
	fail bool
}

func (a *auditedKeys) AuditSFTP(_ context.Context, admin, action, file string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("audit log unwritable")
	}
	a.got = append(a.got, admin+" "+action+" "+file)
	return nil
}

// sftpServer runs the console's SSH server over a data directory holding
// a store key, a backup and a symbolic link out of backups/, with one
// registered admin key; it returns the data directory and an sftp runner.
func sftpServer(t *testing.T, aud ...*auditedKeys) (string, func(key string, batch ...string) (string, error), string, string) {
	t.Helper()
	if _, err := exec.LookPath("sftp"); err != nil {
		t.Fatal("OpenSSH's sftp client is missing: install openssh-client (.ci/install-test-deps)")
	}
	tmp := t.TempDir()
	data := filepath.Join(tmp, "data")
	must(t, os.MkdirAll(filepath.Join(data, "backups"), 0o700))
	must(t, os.WriteFile(filepath.Join(data, "clinicgate.key"), []byte("the sealing key"), 0o600))
	must(t, os.WriteFile(filepath.Join(data, "backups", "clinicgate-20261204-080000.cgbackup"), []byte("encrypted backup"), 0o600))
	must(t, os.Symlink("../clinicgate.key", filepath.Join(data, "backups", "escape.cgbackup")))

	registered, regFP := newKey(t, tmp, "admin")
	stranger, _ := newKey(t, tmp, "stranger")
	var checker tui.KeyChecker = keys{regFP: "alice"}
	if len(aud) > 0 {
		aud[0].keys = keys{regFP: "alice"}
		checker = aud[0]
	}
	s, err := tui.NewSSH(tui.SSHConfig{HostKeyPath: filepath.Join(tmp, "host"), Keys: checker,
		AdminFor: func(string) tui.Admin { return nil }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DataDir: data})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	port := ln.Addr().(*net.TCPAddr).Port
	run := func(key string, batch ...string) (string, error) {
		b := filepath.Join(tmp, "batch")
		must(t, os.WriteFile(b, []byte(strings.Join(batch, "\n")+"\n"), 0o600))
		cmd := exec.CommandContext(t.Context(), "sftp", "-b", b, "-i", key, "-P", strconv.Itoa(port),
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile="+filepath.Join(tmp, "known_hosts"),
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-F", "none", "alice@127.0.0.1")
		cmd.Dir = tmp
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	return data, run, registered, stranger
}

func TestSFTPServesBackupsReadOnly(t *testing.T) {
	data, sftp, key, _ := sftpServer(t)
	dl := filepath.Join(t.TempDir(), "got")
	must(t, os.MkdirAll(filepath.Join(data, "exports"), 0o700))
	must(t, os.WriteFile(filepath.Join(data, "exports", "audit-2026-11.csv"), []byte("seq,time"), 0o600))
	if out, err := sftp(key, "ls /", "ls /backups", "get /backups/clinicgate-20261204-080000.cgbackup "+dl, "get /exports/audit-2026-11.csv "+dl+".csv"); err != nil {
		t.Fatalf("download: %v\n%s", err, out)
	} else if !strings.Contains(out, "clinicgate-20261204-080000.cgbackup") || !strings.Contains(out, "incoming") || !strings.Contains(out, "exports") {
		t.Errorf("listing:\n%s", out)
	}
	if b, _ := os.ReadFile(dl); string(b) != "encrypted backup" {
		t.Errorf("downloaded %q", b)
	}
	up := filepath.Join(t.TempDir(), "up.cgbackup")
	must(t, os.WriteFile(up, []byte("restore me"), 0o644))
	if out, err := sftp(key, "put "+up+" /backups/evil.cgbackup"); err == nil {
		t.Errorf("an upload into /backups was accepted:\n%s", out)
	}
	if out, err := sftp(key, "rm /backups/clinicgate-20261204-080000.cgbackup"); err == nil {
		t.Errorf("a backup was removed:\n%s", out)
	}
	if out, err := sftp(key, "put "+up+" /exports/evil.csv"); err == nil {
		t.Errorf("an upload into /exports was accepted:\n%s", out)
	}
	if b, _ := os.ReadFile(dl + ".csv"); string(b) != "seq,time" {
		t.Errorf("downloaded export %q", b)
	}
	if _, err := os.Stat(filepath.Join(data, "backups", "evil.cgbackup")); err == nil {
		t.Error("evil.cgbackup exists")
	}
	if out, err := sftp(key, "put "+up+" /incoming/up.cgbackup"); err != nil {
		t.Fatalf("upload into /incoming: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(data, "incoming", "up.cgbackup"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("uploaded file: %v %v, want 0600", fi, err)
	}
}

func TestSFTPReachesNothingOutsideItsDirectories(t *testing.T) {
	data, sftp, key, _ := sftpServer(t)
	dst := t.TempDir()
	for _, p := range []string{"/clinicgate.key", "/backups/../clinicgate.key", "../clinicgate.key",
		"/backups/escape.cgbackup", "/incoming/../../data/clinicgate.key", "/ssh_host_ed25519_key"} {
		if out, err := sftp(key, "get "+p+" "+filepath.Join(dst, "x")); err == nil {
			t.Errorf("get %s succeeded:\n%s", p, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "x")); err == nil {
		t.Fatalf("a file outside the jail was downloaded: %q", b)
	}
	up := filepath.Join(t.TempDir(), "k")
	must(t, os.WriteFile(up, []byte("replaced"), 0o600))
	for _, p := range []string{"/clinicgate.key", "/incoming/../clinicgate.key", "/incoming/sub/x"} {
		if out, err := sftp(key, "put "+up+" "+p); err == nil {
			t.Errorf("put %s succeeded:\n%s", p, out)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(data, "clinicgate.key")); string(b) != "the sealing key" {
		t.Fatalf("the key was overwritten: %q", b)
	}
}

// A backup leaving the box is in the audit; when the audit cannot be
// written, the download is refused.
func TestSFTPDownloadsAreAudited(t *testing.T) {
	aud := &auditedKeys{}
	_, sftp, key, _ := sftpServer(t, aud)
	dst := t.TempDir()
	if out, err := sftp(key, "get /backups/clinicgate-20261204-080000.cgbackup "+dst+"/a"); err != nil {
		t.Fatalf("download: %v\n%s", err, out)
	}
	aud.mu.Lock()
	got := strings.Join(aud.got, "; ")
	aud.fail = true
	aud.mu.Unlock()
	if got != "alice download backups/clinicgate-20261204-080000.cgbackup" {
		t.Fatalf("audited %q", got)
	}
	if out, err := sftp(key, "get /backups/clinicgate-20261204-080000.cgbackup "+dst+"/b"); err == nil {
		t.Fatalf("a download went unaudited:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dst, "b")); err == nil {
		t.Fatal("the unaudited download was written")
	}
}

func TestSFTPRefusesUnregisteredKey(t *testing.T) {
	_, sftp, _, stranger := sftpServer(t)
	if out, err := sftp(stranger, "ls /backups"); err == nil || strings.Contains(out, "cgbackup") {
		t.Fatalf("an unregistered key listed the backups: %v\n%s", err, out)
	}
}

// newKey writes an ed25519 private key in OpenSSH's format and returns
// its path and fingerprint.
func newKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	block, err := gossh.MarshalPrivateKey(priv, name)
	must(t, err)
	p := filepath.Join(dir, name)
	must(t, os.WriteFile(p, pem.EncodeToMemory(block), 0o600))
	spub, err := gossh.NewPublicKey(pub)
	must(t, err)
	return p, gossh.FingerprintSHA256(spub)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
