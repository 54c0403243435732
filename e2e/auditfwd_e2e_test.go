package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/auditfwd/auditfwdtest"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream/upstreamtest"
)

// rsyslog is a real rsyslogd receiving RFC 5425 (imtcp with GnuTLS) on
// 127.0.0.1 and writing what it gets to a file in RFC 5424 form, as a
// clinic's collector would.
type rsyslog struct {
	dir, conf, out string
	port           int
	cmd            *exec.Cmd
	log            *upstreamtest.LockedBuffer
	done           chan struct{}
}

// startRsyslog runs rsyslogd with a server certificate from ca, asking
// clients for a certificate from ca too. port 0 lets the kernel choose
// (rsyslog writes it to a file); a restart passes the port it had.
func startRsyslog(t *testing.T, dir string, ca *auditfwdtest.CA, port int) *rsyslog {
	t.Helper()
	upstreamtest.Need(t, "rsyslogd")
	bin := "/usr/sbin/rsyslogd"
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		bin = p
	}
	r := &rsyslog{dir: dir, conf: filepath.Join(dir, "rsyslog.conf"), out: filepath.Join(dir, "audit.log"), log: &upstreamtest.LockedBuffer{}, done: make(chan struct{})}
	if _, err := os.Stat(filepath.Join(dir, "server.pem")); err != nil {
		cert, key := ca.Issue(t, "collector", "127.0.0.1")
		for name, b := range map[string][]byte{"ca.pem": ca.CertPEM, "server.pem": cert, "server.key": key} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	portFile := filepath.Join(dir, "port")
	os.Remove(portFile)
	conf := fmt.Sprintf(`global(workDirectory="%[1]s" maxMessageSize="64k"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="%[1]s/ca.pem"
  DefaultNetstreamDriverCertFile="%[1]s/server.pem"
  DefaultNetstreamDriverKeyFile="%[1]s/server.key")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" address="127.0.0.1" port="%[2]d" listenPortFileName="%[3]s")
action(type="omfile" file="%[4]s" template="RSYSLOG_SyslogProtocol23Format")
`, dir, port, portFile, r.out)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "-n", "-f", r.conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.stop)
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		select {
		case <-r.done:
			t.Fatalf("rsyslogd exited at start: %v; its output:\n%s", r.cmd.ProcessState, r.log)
		default:
		}
		n := port
		if n == 0 {
			// rsyslog writes the port it got only when it chose it.
			b, err := os.ReadFile(portFile)
			if err != nil {
				continue
			}
			if n, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n == 0 {
				continue
			}
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n), time.Second); err == nil {
			c.Close()
			r.port = n
			return r
		}
	}
	r.stop()
	t.Fatalf("rsyslogd did not listen within 20 s; its output:\n%s", r.log)
	return nil
}

func (r *rsyslog) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// stop ends rsyslogd as systemd would (SIGTERM) and waits.
func (r *rsyslog) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

var recordSeqRE = regexp.MustCompile(`@cgaudit1 \{"t":"(entry|checkpoint)","seq":(\d+),`)

// received returns the entry numbers in the collector's file, and the
// checkpoints'.
func (r *rsyslog) received(t *testing.T) (entries map[int64]bool, checkpoints []int64) {
	t.Helper()
	b, err := os.ReadFile(r.out)
	if err != nil {
		return map[int64]bool{}, nil
	}
	entries = map[int64]bool{}
	for _, m := range recordSeqRE.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		if m[1] == "entry" {
			entries[n] = true
		} else {
			checkpoints = append(checkpoints, n)
		}
	}
	return entries, checkpoints
}

var headRE = regexp.MustCompile(`delivered:\s+up to entry (\d+) of (\d+)`)

// forwardState reads `audit forward show`: the delivered cursor and the
// head.
func forwardState(t *testing.T, data string) (sent, head int64, out string) {
	t.Helper()
	out = mustCG(t, data, "", "audit", "forward", "show")
	m := headRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("audit forward show: no 'delivered' line:\n%s", out)
	}
	sent, _ = strconv.ParseInt(m[1], 10, 64)
	head, _ = strconv.ParseInt(m[2], 10, 64)
	return sent, head, out
}

// waitAll waits until the collector's file holds every entry from 1 to
// the log's head, with none missing. The deadline only keeps a broken
// forwarder from hanging the suite.
func (r *rsyslog) waitAll(t *testing.T, data, what string) int64 {
	t.Helper()
	var head int64
	for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		_, head, _ = forwardState(t, data)
		got, _ := r.received(t)
		missing := int64(0)
		for i := int64(1); i <= head; i++ {
			if !got[i] {
				missing++
			}
		}
		if head > 0 && missing == 0 {
			return head
		}
	}
	got, _ := r.received(t)
	_, _, show := forwardState(t, data)
	t.Fatalf("%s: the collector's file lacks entries (head %d, %d received)\naudit forward show:\n%s\nrsyslogd:\n%s", what, head, len(got), show, r.log)
	return 0
}

// TestAuditForwardedToRealRsyslog: the daemon forwards every entry to a
// real rsyslog over TLS (both sides with certificates from the clinic's
// CA); rsyslog goes down, logins go on, and when it is back every entry
// arrives with no gap. The collector's file then verifies the local log,
// and catches a rollback, a re-chained forged entry and a wipe that the
// local check alone cannot all catch.
func TestAuditForwardedToRealRsyslog(t *testing.T) {
	data, d := setup(t, "--mfa", "off")
	ca := auditfwdtest.NewCA(t, "Clinic Syslog CA")
	rsDir := t.TempDir()
	rs := startRsyslog(t, rsDir, ca, 0)
	cert, key := ca.Issue(t, "clinicgate")
	for name, b := range map[string][]byte{"cg.pem": cert, "cg.key": key} {
		if err := os.WriteFile(filepath.Join(rsDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustCG(t, data, "", "audit", "forward", "set", "--address", rs.addr(), "--ca", filepath.Join(rsDir, "ca.pem"),
		"--cert", filepath.Join(rsDir, "cg.pem"), "--key", filepath.Join(rsDir, "cg.key"))

	login := func(what string) {
		t.Helper()
		if got := received(radclient(t, d.auth, "auth", secret, pap("alice", "correct horse battery"))); got != "Access-Accept" {
			t.Fatalf("%s: got %s, want Access-Accept", what, got)
		}
	}
	for range 3 {
		login("login with the collector up")
	}
	rs.waitAll(t, data, "with rsyslog up")
	if _, cps := rs.received(t); len(cps) == 0 {
		t.Fatal("no checkpoint reached rsyslog at the connection")
	}
	// An older copy of the database, as an attacker's or a careless
	// restore would put back.
	oldDB := filepath.Join(t.TempDir(), "old.db")
	if _, err := openDB(t, data).Exec(`VACUUM INTO '` + oldDB + `'`); err != nil {
		t.Fatal(err)
	}

	rs.stop()
	for range 5 {
		login("login with the collector down") // logins never wait for the collector
	}
	if sent, head, _ := forwardState(t, data); sent >= head {
		t.Fatalf("with rsyslog down: delivered %d of %d, want the newest entries waiting", sent, head)
	}
	rs = startRsyslog(t, rsDir, ca, rs.port)
	login("login after the collector came back")
	rs.waitAll(t, data, "after rsyslog came back")

	d.stop(t)
	// The stop entry and the last checkpoint go out before the daemon
	// ends.
	_, head, _ := forwardState(t, data)
	if got, cps := rs.received(t); !got[head] || len(cps) < 2 || cps[len(cps)-1] != head {
		t.Fatalf("after the daemon stopped: entry %d received %v, checkpoints %v; want the stop entry and a checkpoint of it", head, got[head], cps)
	}
	rs.stop()
	copyFile := rs.out
	if out := mustCG(t, data, "", "audit", "verify", "--against", copyFile); !strings.Contains(out, "chain unbroken") || !strings.Contains(out, "agree with") {
		t.Fatalf("verify --against the collector's file: got\n%s", out)
	}

	// Each attack on its own copy of the data directory.
	attack := func(name string, tamper func(dir string)) (local, against string) {
		dir := filepath.Join(t.TempDir(), name)
		if out, err := exec.Command("cp", "-a", data, dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		tamper(dir)
		local, _ = cg(t, dir, "", "audit", "verify")
		against, err := cg(t, dir, "", "audit", "verify", "--against", copyFile)
		if err == nil {
			t.Fatalf("%s: verify --against exited 0:\n%s", name, against)
		}
		return local, against
	}

	// 1. The database put back to the older copy.
	local, against := attack("rollback", func(dir string) {
		db := filepath.Join(dir, "clinicgate.db")
		os.Remove(db + "-wal")
		os.Remove(db + "-shm")
		b, err := os.ReadFile(oldDB)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(db, b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if !strings.Contains(local, "BROKEN") || !strings.Contains(local, "were written (audit-head)") {
		t.Errorf("rollback: local verify did not catch it (the head file should):\n%s", local)
	}
	if !strings.Contains(against, "rolled back") || !regexp.MustCompile(`differs from the copy from entry \d+ on`).MatchString(against) {
		t.Errorf("rollback: verify --against:\n%s", against)
	}

	// 2. An attacker with the key file (root) deletes entries from the
	// fourth on and writes forged ones in their place through
	// clinicgate's own code, head file included.
	local, against = attack("forged", func(dir string) {
		db := openDB(t, dir)
		for _, q := range []string{`DELETE FROM audit WHERE seq >= 4`, `DELETE FROM settings WHERE key LIKE 'audit_head%'`} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		os.Remove(filepath.Join(dir, audit.AnchorFile))
		forge(t, dir)
	})
	if !strings.Contains(local, "chain unbroken") {
		t.Errorf("forged: with the key the local check cannot tell, yet it said:\n%s", local)
	}
	if !strings.Contains(against, "entry 4 differs from the copy") || !strings.Contains(against, "from entry 4 on") {
		t.Errorf("forged: verify --against does not name entry 4:\n%s", against)
	}

	// 3. Everything wiped: rows, head record and head file.
	local, against = attack("wiped", func(dir string) {
		db := openDB(t, dir)
		for _, q := range []string{`DELETE FROM audit`, `DELETE FROM settings WHERE key LIKE 'audit_%'`} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		os.Remove(filepath.Join(dir, audit.AnchorFile))
	})
	if !strings.Contains(local, "0 entries") {
		t.Errorf("wiped: local verify: %s", local)
	}
	if !strings.Contains(against, "the local log is empty, but the copy shows entries up to") || !strings.Contains(against, "from entry 1 on") {
		t.Errorf("wiped: verify --against:\n%s", against)
	}

	// 4. Rows and head record wiped, the head file left: the local check
	// alone refuses "0 entries".
	local, _ = attack("wiped-rows", func(dir string) {
		db := openDB(t, dir)
		for _, q := range []string{`DELETE FROM audit`, `DELETE FROM settings WHERE key LIKE 'audit_%'`} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
	})
	if !strings.Contains(local, "BROKEN") || !strings.Contains(local, "every entry was deleted") {
		t.Errorf("wiped rows: local verify:\n%s", local)
	}
}

// forge writes three entries at the end of the log in dir with the
// appliance's own key, as an attacker who can read clinicgate.key would.
func forge(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := audit.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, u := range []string{"mallory", "mallory", "mallory"} {
		if _, err := l.Append(ctx, audit.Entry{Kind: audit.KindDecision, Door: "radius", Client: "local", User: u, Outcome: "reject", Reason: "bad_password"}); err != nil {
			t.Fatal(err)
		}
	}
}
