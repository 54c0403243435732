package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/replica/sftptest"
)

const backupPass = "a long enough backup passphrase"

// The appliance dies; a second, fresh one is restored from the off-box
// replica on a real OpenSSH SFTP server, with the key from an encrypted
// backup, and everything committed up to the last replicated point is
// there: a user added after the backup (only the replica has her) logs in
// over RADIUS, and the audit chain verifies across the restore.
func TestReplicaRestoresOntoASecondAppliance(t *testing.T) {
	need(t, "radclient", "sftp")
	srv := sftptest.Start(t)
	data, d := setup(t, "--mfa", "off")
	out := mustCG(t, data, backupPass+"\n", "backup", "create")
	m := regexp.MustCompile(`backup written: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backup create:\n%s", out)
	}
	keyBackup := m[1]

	// Turned on while the daemon runs: it restarts itself to apply it.
	set := mustCG(t, data, "", "backup", "replicate", "set", "--sftp", srv.Target("site"), "--key", srv.KeyFile)
	if !strings.Contains(set, srv.HostFingerprint) {
		t.Fatalf("replicate set did not show the pinned host key %s:\n%s", srv.HostFingerprint, set)
	}
	waitLong(t, 60*time.Second, "the daemon to restart with replication", func() bool {
		return strings.Contains(d.stdout.String(), "starting again to apply new settings") && strings.Count(d.stdout.String(), "is running") >= 2
	}, func() string { return d.stderr.String() })
	d.stop(t)
	d = startDaemon(t, data)
	mustCG(t, data, "a second password 123", "user", "add", "bob", "--group", "staff", "--password-stdin")
	added := time.Now()
	waitLong(t, 60*time.Second, "the replica to catch up", func() bool {
		show := mustCG(t, data, "", "backup", "replicate", "show")
		return strings.Contains(show, "up to date") && replicatedAfter(show, added)
	}, func() string {
		return mustCG(t, data, "", "backup", "replicate", "show") + "\n" + d.stderr.String() + "\nsshd:\n" + readFile(srv.Log)
	})
	if got := received(radclient(t, d.auth, "auth", secret, pap("bob", "a second password 123"))); got != "Access-Accept" {
		t.Fatalf("bob on the first appliance: %s", got)
	}
	// The box dies without a goodbye.
	_ = d.cmd.Process.Kill()
	<-d.done

	second := filepath.Join(t.TempDir(), "second")
	if out, err := cg(t, second, "wrong passphrase entirely\n", "backup", "restore", "--from-replica", "--sftp", srv.Target("site"),
		"--key", srv.KeyFile, "--host-key", srv.HostFingerprint, "--key-backup", keyBackup); err == nil || !strings.Contains(out, "passphrase") {
		t.Fatalf("a wrong passphrase: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(second); len(ents) > 1 { // serve.lock only
		t.Fatalf("a refused restore left files in %s: %v", second, ents)
	}
	mustCG(t, second, backupPass+"\n", "backup", "restore", "--from-replica", "--sftp", srv.Target("site"),
		"--key", srv.KeyFile, "--host-key", srv.HostFingerprint, "--key-backup", keyBackup)
	if v := mustCG(t, second, "", "audit", "verify"); !strings.Contains(v, "chain unbroken") {
		t.Fatalf("audit verify after the restore:\n%s", v)
	}
	d2 := startDaemon(t, second)
	for user, pw := range map[string]string{"alice": "correct horse battery", "bob": "a second password 123"} {
		if got := received(radclient(t, d2.auth, "auth", secret, pap(user, pw))); got != "Access-Accept" {
			t.Fatalf("%s on the restored appliance: got %s\n%s", user, got, d2.stderr)
		}
	}
	tail := mustCG(t, second, "", "audit", "tail", "-n", "200")
	for _, want := range []string{"backup_replicate_set", "backup_restore"} {
		if !strings.Contains(tail, want) {
			t.Errorf("the restored audit lacks %s:\n%s", want, tail)
		}
	}
	// The restored appliance replicates too (the settings came along), to
	// the same place: that is the operator's call, shown on its console.
	if v := mustCG(t, second, "", "audit", "verify"); !strings.Contains(v, "chain unbroken") {
		t.Fatalf("audit verify on the running restored appliance:\n%s", v)
	}
}

// The encrypted backup made on the box is fetched over the console's SFTP
// with OpenSSH's sftp client and restored onto a fresh data directory.
func TestBackupFetchedOverSFTPRestores(t *testing.T) {
	need(t, "radclient", "sftp")
	data, d := setup(t, "--mfa", "off")
	key, pub := sshKey(t)
	mustCG(t, data, pub, "admin", "add-key", "tech")
	out := mustCG(t, data, backupPass+"\n", "backup", "create")
	m := regexp.MustCompile(`backup written: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backup create:\n%s", out)
	}
	host, port, _ := strings.Cut(d.ssh, ":")
	dst := t.TempDir()
	batch := filepath.Join(dst, "batch")
	if err := os.WriteFile(batch, []byte("get /backups/"+filepath.Base(m[1])+" "+dst+"/fetched.cgbackup\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sftp, err := exec.Command("sftp", "-b", batch, "-i", key, "-P", port, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile="+filepath.Join(dst, "known_hosts"),
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-F", "none", "tech@"+host).CombinedOutput()
	if err != nil {
		t.Fatalf("sftp: %v\n%s\n%s", err, sftp, d.stderr)
	}
	if tail := mustCG(t, data, "", "audit", "tail"); !strings.Contains(tail, "sftp_download") {
		t.Fatalf("the download is not in the audit:\n%s", tail)
	}
	second := filepath.Join(t.TempDir(), "second")
	mustCG(t, second, backupPass+"\n", "backup", "restore", filepath.Join(dst, "fetched.cgbackup"))
	d.stop(t)
	d2 := startDaemon(t, second)
	if got := received(radclient(t, d2.auth, "auth", secret, pap("alice", "correct horse battery"))); got != "Access-Accept" {
		t.Fatalf("alice on the restored appliance: %s", got)
	}
	if v := mustCG(t, second, "", "audit", "verify"); !strings.Contains(v, "chain unbroken") {
		t.Fatalf("audit verify:\n%s", v)
	}
}

var lastReplicatedRE = regexp.MustCompile(`last replicated (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+0-9-]+)`)

func replicatedAfter(show string, t0 time.Time) bool {
	m := lastReplicatedRE.FindStringSubmatch(show)
	if m == nil {
		return false
	}
	at, err := time.Parse(time.DateTime+" MST", m[1])
	if err != nil {
		return false
	}
	// The zone abbreviation parses as a zone of that name at offset 0
	// unless it is the local one; compare in the local zone.
	at = time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second(), 0, time.Local)
	return at.After(t0)
}

func waitLong(t *testing.T, d time.Duration, what string, cond func() bool, explain func() string) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s\n%s", what, explain())
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }
