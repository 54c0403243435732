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

// The head file holds two records written in turn in place (issue 15).
// These tests tear the newer one as a power cut in the middle of a write
// would, and try to use that to hide a rollback.

const slot = 4096

// newerSlot returns the offset of the record with the higher generation.
func newerSlot(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) != 2*slot {
		t.Fatalf("head file: %d bytes, want %d", len(b), 2*slot)
	}
	gen := func(rec []byte) int {
		i := bytes.Index(rec, []byte("\ngen "))
		if i < 0 {
			t.Fatalf("no generation in %q", rec[:80])
		}
		var g int
		for _, c := range rec[i+5:] {
			if c < '0' || c > '9' {
				break
			}
			g = g*10 + int(c-'0')
		}
		return g
	}
	if gen(b[slot:]) > gen(b[:slot]) {
		return slot
	}
	return 0
}

// tear zeroes the second half of the newer record, as a write cut off
// after its first 2 KiB would leave it.
func (e *env) tear(t *testing.T) {
	t.Helper()
	p := filepath.Join(e.dir, audit.AnchorFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	off := newerSlot(t, b)
	clear(b[off+slot/2 : off+slot])
	// A torn record may as well end mid-line with old bytes after it.
	copy(b[off+40:], "head 9")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHeadFileRecordsAlternateInPlace(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 1)
	p := filepath.Join(e.dir, audit.AnchorFile)
	fi1, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p)
	e.fill2(t, 1)
	b2, _ := os.ReadFile(p)
	fi2, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi1, fi2) {
		t.Error("the head file was replaced, not written in place")
	}
	if newerSlot(t, b1) == newerSlot(t, b2) {
		t.Error("two writes went to the same record")
	}
	// The record not written keeps the head before.
	if old := newerSlot(t, b1); !bytes.Equal(b1[old:old+slot], b2[old:old+slot]) {
		t.Error("the older record was rewritten")
	}
	if !bytes.Contains(b2, []byte("head 2 ")) || !bytes.Contains(b2, []byte("head 1 ")) {
		t.Errorf("want heads 1 and 2 in the file:\n%s", bytes.ReplaceAll(b2, []byte{0}, nil))
	}
}

// TestTornHeadRecordAfterAPowerCut: the write tore, the database (committed
// first) is beyond the other record. Verify says so until the next entry,
// which mends the file; it is not taken for an attack.
func TestTornHeadRecordAfterAPowerCut(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 4)
	e.tear(t)
	e.reopen(t)
	wantProblem(t, e.verify(t), "torn by a power cut")
	if p, err := e.log.CheckHead(t.Context()); err != nil || len(p) != 0 {
		t.Fatalf("CheckHead: got %q, %v; want no rollback reported", p, err)
	}
	note, err := e.log.TornHead(t.Context())
	if err != nil || !strings.Contains(note, "names entry 3, which the log holds, with 1 entries after it") {
		t.Fatalf("TornHead: got %q, %v", note, err)
	}
	e.fill2(t, 1)
	if rep := e.verify(t); !rep.OK() {
		t.Fatalf("Verify after the next entry: %q", rep.Problems)
	}
	if note, err := e.log.TornHead(t.Context()); err != nil || note != "" {
		t.Fatalf("TornHead after the next entry: got %q, %v", note, err)
	}
}

// TestTornHeadRecordCannotHideARollback: copy the database, log in, put
// the copy back, and tear the record that names the login. The database
// is then at the other record's head, which no power cut leaves.
func TestTornHeadRecordCannotHideARollback(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	old := e.snapshot(t)
	e.fill2(t, 1)
	e.restore(t, old)
	e.tear(t)
	e.reopen(t)
	wantProblem(t, e.verify(t), "the log ends at the older record's entry 3")
	if p, err := e.log.CheckHead(t.Context()); err != nil || len(p) == 0 {
		t.Fatalf("CheckHead: got %q, %v; want the alteration reported", p, err)
	}
	if note, _ := e.log.TornHead(t.Context()); note != "" {
		t.Fatalf("TornHead took it for a power cut: %q", note)
	}
	// Entries written on the put-back copy keep the finding for good.
	for range 3 {
		e.fill2(t, 1)
	}
	wantProblem(t, e.verify(t), "file was found altered outside clinicgate")
}

// TestBothHeadRecordsBrokenDetected: no power cut tears both.
func TestBothHeadRecordsBrokenDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	p := filepath.Join(e.dir, audit.AnchorFile)
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("head "), []byte("heap ")), 0o600); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, e.verify(t), "altered outside clinicgate")
	e.fill2(t, 1)
	wantProblem(t, e.verify(t), "file was found altered outside clinicgate")
}

// TestHeadFileSharedWithAnotherProcess: the daemon and a command-line
// change write the file in turn; each checks the other's record against
// the database before writing its own.
func TestHeadFileSharedWithAnotherProcess(t *testing.T) {
	e := newEnv(t)
	st2, err := store.Open(t.Context(), e.dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	cli, err := audit.New(st2, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		l := e.log
		if i%3 == 2 {
			l = cli
		}
		if _, err := l.Append(t.Context(), audit.Entry{Kind: audit.KindAdmin, Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if rep := e.verify(t); !rep.OK() || rep.Entries != 6 {
		t.Fatalf("Verify: %+v", rep)
	}
	b, _ := os.ReadFile(filepath.Join(e.dir, audit.AnchorFile))
	if !bytes.Contains(b, []byte("head 6 ")) {
		t.Errorf("the file does not name entry 6:\n%s", bytes.ReplaceAll(b, []byte{0}, nil))
	}
}

// TestHeadFileReadWhileWritten: `audit verify` (another process, or the
// console) reads the file while the daemon appends: it must never see a
// half-written record and call it torn, nor a head newer than the rows
// it read and call that a rollback.
func TestHeadFileReadWhileWritten(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 400 {
			if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindAdmin, Reason: "x"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for reads := 0; ; reads++ {
		select {
		case <-done:
			if reads == 0 {
				t.Fatal("no check ran while the entries were written")
			}
			return
		default:
		}
		p, err := e.log.CheckHead(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		torn, err := e.log.TornHead(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 0 || torn != "" {
			t.Fatalf("read %d, while entries were written: %q %q", reads, p, torn)
		}
		if reads%5 == 0 {
			if rep := e.verify(t); !rep.OK() {
				t.Fatalf("Verify %d, while entries were written: %q", reads, rep.Problems)
			}
		}
	}
}
