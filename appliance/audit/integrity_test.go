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

// Issue 16: an attacker with file access rewrote, rolled back and wiped
// the log, and `audit verify` said "chain unbroken". These tests replay
// each attack.

// reopen closes the store and opens the data directory again, as the
// next command or daemon start would.
func (e *env) reopen(t *testing.T) {
	t.Helper()
	e.st.Close()
	st, err := store.Open(t.Context(), e.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	l, err := audit.New(st, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	e.st, e.log = st, l
}

// snapshot copies the database aside, consistent, as a backup would.
func (e *env) snapshot(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "old.db")
	e.raw(t, `VACUUM INTO '`+p+`'`)
	return p
}

// restore puts the database copy at p back in place of the current one.
func (e *env) restore(t *testing.T, p string) {
	t.Helper()
	e.st.Close()
	db := filepath.Join(e.dir, store.DBFile)
	os.Remove(db + "-wal")
	os.Remove(db + "-shm")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.reopen(t)
}

func wantProblem(t *testing.T, rep audit.Report, want string) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("Verify: got OK (%d entries), want a problem mentioning %q", rep.Entries, want)
	}
	if !strings.Contains(strings.Join(rep.Problems, "\n"), want) {
		t.Fatalf("Verify: got %q, want a problem mentioning %q", rep.Problems, want)
	}
}

func TestRolledBackDatabaseDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	old := e.snapshot(t)
	e.fill2(t, 4)
	if rep := e.verify(t); !rep.OK() {
		t.Fatalf("Verify before the rollback: %q", rep.Problems)
	}
	e.restore(t, old)
	wantProblem(t, e.verify(t), "the log ends at entry 3, but entries up to 7 were written")

	// New entries on the restored copy do not hide it: the append finds
	// the database behind the head file and keeps the evidence.
	for range 6 {
		if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindSystem, Reason: "start"}); err != nil {
			t.Fatal(err)
		}
	}
	wantProblem(t, e.verify(t), "put back to an older copy or rewritten: entries up to 7 had been written")
}

// fill2 appends n more entries after fill.
func (e *env) fill2(t *testing.T, n int) {
	t.Helper()
	for range n {
		if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindDecision, User: "zoe", Outcome: "accept", Reason: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWipedLogDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	// Every row and the head record, as the review did.
	e.raw(t, `DELETE FROM audit`, `DELETE FROM settings WHERE key LIKE 'audit_head%'`)
	rep := e.verify(t)
	wantProblem(t, rep, "the log is empty, but 5 entries were written")
	if rep.Entries != 0 {
		t.Errorf("entries: got %d, want 0", rep.Entries)
	}
}

func TestMissingHeadRecordWithEntriesDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	e.raw(t, `DELETE FROM settings WHERE key LIKE 'audit_head%'`)
	wantProblem(t, e.verify(t), "the recorded end of the log is missing")
}

func TestDeletedHeadFileDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	if err := os.Remove(filepath.Join(e.dir, audit.AnchorFile)); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, e.verify(t), "file is missing")
	// The daemon writes it again at start (an upgrade from a version
	// without it); then the log verifies.
	if created, err := e.log.EnsureAnchor(t.Context()); err != nil || !created {
		t.Fatalf("EnsureAnchor: got %v, %v; want created", created, err)
	}
	if rep := e.verify(t); !rep.OK() {
		t.Fatalf("Verify after EnsureAnchor: %q", rep.Problems)
	}
}

func TestEditedHeadFileDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	p := filepath.Join(e.dir, audit.AnchorFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte("head 5 "), []byte("head 2 "), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, e.verify(t), "altered outside clinicgate")
}

func TestHeadFileIsPrivate(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 1)
	fi, err := os.Stat(filepath.Join(e.dir, audit.AnchorFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode: got %04o, want 0600", fi.Mode().Perm())
	}
}

// TestFailedAppendLeavesHeadFileConsistent: the head file is written
// before the commit; a transaction that then fails leaves the database
// at the file's base, which is not a rollback.
func TestFailedAppendLeavesHeadFileConsistent(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	err := e.st.WithTx(t.Context(), func(tx *store.Tx) error {
		if _, err := e.log.AppendTx(t.Context(), tx, audit.Entry{Kind: audit.KindAdmin, Reason: "x"}); err != nil {
			return err
		}
		if _, err := e.log.AppendTx(t.Context(), tx, audit.Entry{Kind: audit.KindAdmin, Reason: "y"}); err != nil {
			return err
		}
		return os.ErrInvalid // the change the entries describe failed
	})
	if err == nil {
		t.Fatal("transaction: got nil error")
	}
	if rep := e.verify(t); !rep.OK() {
		t.Fatalf("Verify after a failed transaction: %q", rep.Problems)
	}
	e.fill2(t, 2)
	if rep := e.verify(t); !rep.OK() || rep.Entries != 5 {
		t.Fatalf("Verify after appending again: %+v", rep)
	}
}

func TestCheckHeadReportsARollbackWithoutAWalk(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 2)
	old := e.snapshot(t)
	e.fill2(t, 2)
	if p, err := e.log.CheckHead(t.Context()); err != nil || len(p) != 0 {
		t.Fatalf("CheckHead before: got %q, %v", p, err)
	}
	e.restore(t, old)
	p, err := e.log.CheckHead(t.Context())
	if err != nil || len(p) != 1 || !strings.Contains(p[0], "ends at entry 2, but entries up to 4 were written") {
		t.Fatalf("CheckHead after the rollback: got %q, %v", p, err)
	}
}

// TestRollbackOfTheLastCommitDetected: the attacker's own move — copy
// the database, make the login, put the copy back — removes exactly one
// commit; the head file, written after each commit, still tells.
func TestRollbackOfTheLastCommitDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	old := e.snapshot(t)
	e.fill2(t, 1)
	e.restore(t, old)
	wantProblem(t, e.verify(t), "the log ends at entry 3, but entries up to 4 were written")
}

// TestHeadFileWriteFailureReported: entries are committed before the
// file is written, so a failure there is reported, not turned into a
// failed append.
func TestHeadFileWriteFailureReported(t *testing.T) {
	e := newEnv(t)
	var got []error
	e.log.OnAnchorError(func(err error) { got = append(got, err) })
	p := filepath.Join(e.dir, audit.AnchorFile)
	e.fill(t, 1)
	// A directory in the file's place makes the write fail.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindSystem, Reason: "x"}); err != nil {
		t.Fatalf("Append: %v; want it committed", err)
	}
	if len(got) != 1 {
		t.Fatalf("errors reported: got %v, want one", got)
	}
}
