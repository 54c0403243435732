package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

func (e *env) export(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := e.log.Export(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (e *env) against(t *testing.T, copyData []byte) audit.AgainstReport {
	t.Helper()
	rep, err := e.log.VerifyAgainst(t.Context(), bytes.NewReader(copyData))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantAgainst(t *testing.T, rep audit.AgainstReport, want string, firstDiff int64) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("VerifyAgainst: got OK (%d compared), want a problem mentioning %q", rep.Compared, want)
	}
	if !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
		t.Fatalf("VerifyAgainst: got %q, want a problem mentioning %q", rep.Problems, want)
	}
	if rep.FirstDiff != firstDiff {
		t.Errorf("first differing entry: got %d, want %d", rep.FirstDiff, firstDiff)
	}
}

func TestLogAgreesWithItsExport(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindAdmin, User: "Zoë 🙂", Detail: "line\nbreak \"quoted\""}); err != nil {
		t.Fatal(err)
	}
	data := e.export(t)
	if n := bytes.Count(data, []byte("\n")); n != 7 {
		t.Fatalf("export: got %d lines, want 6 entries and a checkpoint", n)
	}
	for _, c := range data {
		if c >= 0x80 {
			t.Fatalf("export holds a non-ASCII byte %#x: a collector may rewrite it", c)
		}
	}
	// A collector adds its own prefix; duplicates from a resend are
	// harmless.
	var syslog bytes.Buffer
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) > 0 {
			syslog.WriteString("2026-12-01T10:00:00+00:00 clinic clinicgate[1]: ")
			syslog.Write(l)
		}
	}
	syslog.Write(bytes.SplitAfter(data, []byte("\n"))[2])
	e.fill2(t, 2)
	rep := e.against(t, syslog.Bytes())
	if !rep.OK() || rep.Compared != 6 || rep.CopyCheckpoints != 1 {
		t.Fatalf("VerifyAgainst: got %+v, want OK with 6 entries compared and 1 checkpoint", rep)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "entries 7-8 are newer than the copy") {
		t.Errorf("notes: got %q, want the two newer entries named", rep.Notes)
	}
}

// TestForgedChainCaughtOnlyByTheCopy: an attacker who holds the key file
// (root) removes entries from 3 on and writes forged ones in their place
// through clinicgate's own code, head file included. The local check
// cannot tell; the copy sent off the box before does, and names entry 3.
func TestForgedChainCaughtOnlyByTheCopy(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	offBox := e.export(t)

	e.raw(t, `DELETE FROM audit WHERE seq >= 3`, `DELETE FROM settings WHERE key LIKE 'audit_head%'`)
	if err := os.Remove(filepath.Join(e.dir, audit.AnchorFile)); err != nil {
		t.Fatal(err)
	}
	e.reopen(t)
	for _, u := range []string{"carol", "dave", "erin"} {
		if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindDecision, User: u, Outcome: "accept", Reason: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if rep := e.verify(t); !rep.OK() || rep.Entries != 5 {
		t.Fatalf("local Verify of the forged chain: got %+v; the forger holds the key, so it passes locally", rep)
	}
	wantAgainst(t, e.against(t, offBox), "entry 3 differs from the copy", 3)
}

func TestRollbackCaughtByTheCopy(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	old := e.snapshot(t)
	e.fill2(t, 3)
	offBox := e.export(t)
	e.restore(t, old)
	wantAgainst(t, e.against(t, offBox), "the local log ends at entry 3, but the copy shows entries up to 6", 0)
}

func TestTruncatedTailCaughtByTheCopy(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 6)
	offBox := e.export(t)
	e.raw(t, `DELETE FROM audit WHERE seq > 4`)
	rep := e.against(t, offBox)
	wantAgainst(t, rep, "first missing: entry 5", 0)
}

func TestWipedLogCaughtByTheCopy(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 4)
	offBox := e.export(t)
	// Everything gone, head file too: a fresh-looking appliance.
	e.raw(t, `DELETE FROM audit`, `DELETE FROM settings WHERE key LIKE 'audit_%'`)
	os.Remove(filepath.Join(e.dir, audit.AnchorFile))
	if rep := e.verify(t); !rep.OK() || rep.Entries != 0 {
		t.Fatalf("local Verify: got %+v; with every trace gone it cannot tell", rep)
	}
	wantAgainst(t, e.against(t, offBox), "the local log is empty, but the copy shows entries up to 4 existed", 0)
}

func TestEditedEntryCaughtByTheCopy(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	offBox := e.export(t)
	e.raw(t, `UPDATE audit SET outcome = 'accept', hash = zeroblob(32) WHERE seq = 4`)
	wantAgainst(t, e.against(t, offBox), "entry 4 differs from the copy", 4)
}

func TestDamagedCopyIsNotTakenForADamagedLog(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	offBox := bytes.Replace(e.export(t), []byte(`"user":"bob"`), []byte(`"user":"eve"`), 1)
	rep := e.against(t, offBox)
	if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), "entry 2 in the copy") || rep.FirstDiff != 0 {
		t.Fatalf("VerifyAgainst of an edited copy: got %+v, want the copy's entry 2 blamed", rep)
	}
}

func TestCopyWithoutRecordsFails(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 2)
	rep := e.against(t, []byte("Dec  1 10:00:00 host sshd[1]: hello\n"))
	if rep.OK() {
		t.Fatal("VerifyAgainst of a file with no records: got OK")
	}
}

func TestRetentionKeepsTheChainVerifiable(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 6) // 2026-11-30 10:00:01 .. 10:00:06
	offBox := e.export(t)
	// Forwarding is on and has delivered up to 4: nothing beyond it goes.
	if err := e.st.WithTx(t.Context(), func(tx *store.Tx) error {
		return tx.SetAuditForward(t.Context(), store.AuditForward{Address: "127.0.0.1:6514", CAPEM: "x", Enabled: true, Updated: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetAuditForwardState(t.Context(), store.AuditForwardState{SentSeq: 4}); err != nil {
		t.Fatal(err)
	}
	later := time.Date(2032, 11, 30, 10, 0, 5, 0, time.UTC) // six years on: 1-4 are older
	p, err := e.log.Prune(t.Context(), later, 3)
	if err != nil || p.Entries != 3 || p.Base.Seq != 3 {
		t.Fatalf("Prune (batch of 3): got %+v, %v; want 3 entries up to 3", p, err)
	}
	p, err = e.log.Prune(t.Context(), later, 3)
	if err != nil || p.Entries != 1 || p.Base.Seq != 4 {
		t.Fatalf("second Prune: got %+v, %v; want entry 4 only (5 was not forwarded)", p, err)
	}
	rep := e.verify(t)
	if !rep.OK() || rep.Entries != 4 { // 5, 6 and the two audit_pruned entries
		t.Fatalf("Verify after pruning: got %+v, want OK with 4 entries", rep)
	}
	rows, _ := e.st.AuditRows(t.Context(), store.AuditFilter{})
	if rows[0].Seq != 5 || rows[len(rows)-1].Reason != "audit_pruned" || !strings.Contains(rows[len(rows)-1].Detail, "up to entry 4") {
		t.Fatalf("kept rows: first %d, last %+v", rows[0].Seq, rows[len(rows)-1])
	}
	if ag := e.against(t, offBox); !ag.OK() || ag.Compared != 2 {
		t.Fatalf("VerifyAgainst after pruning: got %+v, want OK with entries 5-6 compared", ag)
	}

	// Deleting the oldest kept entries needs a new authenticated base.
	e.raw(t, `DELETE FROM audit WHERE seq = 5`)
	wantProblem(t, e.verify(t), "entries 5-5 are missing")
	e.raw(t, `UPDATE settings SET value = '5:' || lower(hex((SELECT prev_hash FROM audit WHERE seq = 6))) WHERE key = 'audit_base'`)
	wantProblem(t, e.verify(t), "removed by retention (up to entry 5) was not written by clinicgate")
}

func TestRetentionParsing(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"6y", "6y", true}, {"400d", "400d", true}, {"1y180d", "1y180d", true}, {" 7Y ", "7y", true},
		{"1d", "", false}, {"", "", false}, {"6", "", false}, {"y", "", false}, {"-1y", "", false}, {"6m", "", false},
	} {
		r, err := audit.ParseRetention(tt.in)
		if (err == nil) != tt.ok || (tt.ok && r.String() != tt.want) {
			t.Errorf("ParseRetention(%q): got %v, %v; want %q ok=%v", tt.in, r, err, tt.want, tt.ok)
		}
	}
}
