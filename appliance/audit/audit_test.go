package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// clock hands out a new second on every call, so every entry has its own
// time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

type env struct {
	dir string
	st  *store.Store
	log *audit.Log
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(t.Context(), dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	l, err := audit.New(st, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, st: st, log: l}
}

// fill appends n distinct entries.
func (e *env) fill(t *testing.T, n int) {
	t.Helper()
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	for i := range n {
		seq, err := e.log.Append(t.Context(), audit.Entry{
			Kind: audit.KindDecision, Door: "radius", Client: "office-ap", User: users[i%len(users)],
			Device: fmt.Sprintf("aa:bb:cc:dd:ee:%02x", i), Source: "10.0.0.2", Outcome: []string{"accept", "reject"}[i%2],
			Reason: "ok", Detail: fmt.Sprintf(`{"i":%d}`, i),
		})
		if err != nil {
			t.Fatal(err)
		}
		if seq != int64(i+1) {
			t.Fatalf("Append %d: got seq %d, want %d", i+1, seq, i+1)
		}
	}
}

// raw runs SQL on the database file directly, as someone with write access
// to the data directory but not the key file could.
func (e *env) raw(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.dir, store.DBFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func (e *env) verify(t *testing.T) audit.Report {
	t.Helper()
	rep, err := e.log.Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestNewNeedsAStore(t *testing.T) {
	if _, err := audit.New(nil, nil); err == nil {
		t.Error("New(nil): got nil error, want an error")
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	e := newEnv(t)
	rep := e.verify(t)
	if !rep.OK() || rep.Entries != 0 {
		t.Errorf("Verify of an empty log: got %+v, want OK with 0 entries", rep)
	}
}

func TestAppendedChainVerifies(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	rep := e.verify(t)
	if !rep.OK() || rep.Entries != 5 {
		t.Fatalf("Verify: got %+v, want OK with 5 entries", rep)
	}
	rows, err := e.st.AuditRows(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("rows: got %d, want 5", len(rows))
	}
	if got := rows[0].PrevHash; len(got) != 32 || strings.Trim(string(got), "\x00") != "" {
		t.Errorf("first entry's previous hash: got %x, want 32 zero bytes", got)
	}
	for i := 1; i < len(rows); i++ {
		if string(rows[i].PrevHash) != string(rows[i-1].Hash) {
			t.Errorf("entry %d does not link to entry %d", rows[i].Seq, rows[i-1].Seq)
		}
	}
	r := rows[1]
	if r.User != "bob" || r.Kind != audit.KindDecision || r.Outcome != "reject" || r.Detail != `{"i":1}` ||
		!r.At.Equal(time.Date(2026, 11, 30, 10, 0, 2, 0, time.UTC)) {
		t.Errorf("entry 2: got %+v", r)
	}
}

// TestTamperingDetected: each edit someone without the key could make to
// the table is reported. Every case gets its own fresh log of five entries.
func TestTamperingDetected(t *testing.T) {
	tests := []struct {
		name  string
		stmts []string
		want  string // a substring of one problem
	}{
		{"edited field", []string{`UPDATE audit SET user_name = 'mallory' WHERE seq = 2`}, "entry 2 was altered"},
		{"edited outcome", []string{`UPDATE audit SET outcome = 'accept' WHERE seq = 4`}, "entry 4 was altered"},
		{"edited time", []string{`UPDATE audit SET at = at + 1 WHERE seq = 3`}, "entry 3 was altered"},
		{"edited detail", []string{`UPDATE audit SET detail = '' WHERE seq = 5`}, "entry 5 was altered"},
		{"deleted middle row", []string{`DELETE FROM audit WHERE seq = 3`}, "entries 3-3 are missing"},
		{"deleted first row", []string{`DELETE FROM audit WHERE seq = 1`}, "entries 1-1 are missing"},
		{"deleted and renumbered", []string{
			`DELETE FROM audit WHERE seq = 3`,
			`UPDATE audit SET seq = seq - 1 WHERE seq > 3`,
		}, "entry 3"},
		{"rows swapped", []string{
			`UPDATE audit SET seq = -2 WHERE seq = 2`,
			`UPDATE audit SET seq = 2 WHERE seq = 3`,
			`UPDATE audit SET seq = 3 WHERE seq = -2`,
		}, "entry 2 does not link"},
		{"newest rows deleted", []string{`DELETE FROM audit WHERE seq > 3`}, "entries up to 5 were written"},
		{"newest row deleted", []string{`DELETE FROM audit WHERE seq = 5`}, "entries up to 5 were written"},
		{"every row deleted", []string{`DELETE FROM audit`}, "entries up to 5 were written"},
		{"row added at the end", []string{
			`INSERT INTO audit (seq, at, kind, user_name, outcome, prev_hash, hash)
			 SELECT 6, at + 1000000000, 'decision', 'mallory', 'accept', hash, zeroblob(32) FROM audit WHERE seq = 5`,
		}, "entry 6 was altered"},
		{"last row replaced", []string{
			`UPDATE audit SET user_name = 'mallory', hash = zeroblob(32) WHERE seq = 5`,
		}, "entry 5 was altered"},
		{"head damaged", []string{`UPDATE settings SET value = 'junk' WHERE key = 'audit_head'`}, "unreadable"},
		{"head pointing at another hash", []string{
			`UPDATE settings SET value = '5:' || hex(zeroblob(32)) WHERE key = 'audit_head'`,
		}, "not the one clinicgate wrote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.fill(t, 5)
			if rep := e.verify(t); !rep.OK() {
				t.Fatalf("Verify before tampering: got %q, want OK", rep.Problems)
			}
			e.raw(t, tt.stmts...)
			rep := e.verify(t)
			if rep.OK() {
				t.Fatalf("Verify after %s: got OK (%d entries), want problems", tt.name, rep.Entries)
			}
			found := false
			for _, p := range rep.Problems {
				found = found || strings.Contains(p, tt.want)
			}
			if !found {
				t.Errorf("Verify after %s: got %q, want a problem mentioning %q", tt.name, rep.Problems, tt.want)
			}
		})
	}
}

// TestForgedEntryWithMovedHeadDetected: a forger who links a new row
// correctly and moves the head along is still caught, because without the
// key the row's hash is wrong.
func TestForgedEntryWithMovedHeadDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 3)
	e.raw(t,
		`INSERT INTO audit (seq, at, kind, user_name, outcome, prev_hash, hash)
		 SELECT 4, at + 1000000000, 'admin', 'mallory', 'accept', hash, randomblob(32) FROM audit WHERE seq = 3`,
		`UPDATE settings SET value = '4:' || (SELECT hex(hash) FROM audit WHERE seq = 4) WHERE key = 'audit_head'`,
	)
	rep := e.verify(t)
	if rep.OK() || rep.Entries != 4 {
		t.Fatalf("Verify: got %+v, want problems over 4 entries", rep)
	}
	if len(rep.Problems) != 2 || !strings.Contains(rep.Problems[0], "entry 4 was altered") || !strings.Contains(rep.Problems[1], "recorded end") {
		t.Errorf("Verify: got %q, want entry 4 and the moved head reported", rep.Problems)
	}
}

// TestHeadMovedBackAfterDeletionDetected: someone who deletes the newest
// entries and rewrites the recorded head to the new last entry (both
// readable in the table) is caught, because the head carries a MAC.
func TestHeadMovedBackAfterDeletionDetected(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 5)
	e.raw(t,
		`DELETE FROM audit WHERE seq > 3`,
		`UPDATE settings SET value = '3:' || lower(hex((SELECT hash FROM audit WHERE seq = 3))) WHERE key = 'audit_head'`,
	)
	rep := e.verify(t)
	if rep.OK() {
		t.Fatal("Verify: got OK after the newest entries were deleted and the head moved back")
	}
	if !strings.Contains(strings.Join(rep.Problems, "\n"), "recorded end") {
		t.Errorf("Verify: got %q, want the head reported", rep.Problems)
	}
}

// TestAppendAfterTamperingStillReported: new entries chain onto a damaged
// table, and Verify keeps reporting the damage.
func TestAppendAfterTamperingStillReported(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 4)
	e.raw(t, `UPDATE audit SET user_name = 'mallory' WHERE seq = 2`)
	if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindSystem, Outcome: "start"}); err != nil {
		t.Fatal(err)
	}
	rep := e.verify(t)
	if rep.OK() || rep.Entries != 5 {
		t.Errorf("Verify: got %+v, want the edit of entry 2 reported over 5 entries", rep)
	}
}

func TestManyProblemsAreCapped(t *testing.T) {
	e := newEnv(t)
	e.fill(t, 30)
	e.raw(t, `UPDATE audit SET detail = 'x'`)
	rep := e.verify(t)
	if got := len(rep.Problems); got != 20 {
		t.Errorf("problems: got %d, want 20 (capped)", got)
	}
	if rep.Entries != 30 {
		t.Errorf("entries: got %d, want 30", rep.Entries)
	}
}

// TestAppendTxEntriesAreInTheChain: entries written together with the
// change they describe join the same chain; a rolled-back one leaves no
// trace.
func TestAppendTxEntriesAreInTheChain(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.fill(t, 2)
	var seq int64
	err := e.st.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.CreateUser(ctx, store.User{Name: "bob"}, time.Now()); err != nil {
			return err
		}
		var err error
		seq, err = e.log.AppendTx(ctx, tx, audit.Entry{Kind: audit.KindAdmin, Actor: "admin", User: "bob", Outcome: "user added"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if seq != 3 {
		t.Errorf("AppendTx: got seq %d, want 3", seq)
	}

	boom := errors.New("boom")
	err = e.st.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := e.log.AppendTx(ctx, tx, audit.Entry{Kind: audit.KindAdmin, Actor: "admin", User: "carol", Outcome: "user added"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx: got %v, want %v", err, boom)
	}
	e.appendSystem(t)

	rep := e.verify(t)
	if !rep.OK() || rep.Entries != 4 {
		t.Fatalf("Verify: got %+v, want OK with 4 entries", rep)
	}
	rows, err := e.st.AuditRows(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.User == "carol" {
			t.Errorf("entry %d of the rolled-back transaction is in the log", r.Seq)
		}
	}
	if rows[2].Kind != audit.KindAdmin || rows[2].User != "bob" || rows[2].Actor != "admin" {
		t.Errorf("entry 3: got %+v, want the AppendTx entry", rows[2])
	}
}

// appendSystem appends one system entry.
func (e *env) appendSystem(t *testing.T) {
	t.Helper()
	if _, err := e.log.Append(t.Context(), audit.Entry{Kind: audit.KindSystem, Outcome: "after"}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentAppendsKeepOneChain: writers racing never fork the chain.
func TestConcurrentAppendsKeepOneChain(t *testing.T) {
	e := newEnv(t)
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var err error
				if i%2 == 0 {
					_, err = e.log.Append(t.Context(), audit.Entry{Kind: audit.KindDecision, User: fmt.Sprintf("w%d", w)})
				} else {
					err = e.st.WithTx(t.Context(), func(tx *store.Tx) error {
						_, err := e.log.AppendTx(t.Context(), tx, audit.Entry{Kind: audit.KindAdmin, User: fmt.Sprintf("w%d", w)})
						return err
					})
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rep := e.verify(t)
	if !rep.OK() || rep.Entries != writers*each {
		t.Errorf("Verify: got %+v, want OK with %d entries", rep, writers*each)
	}
}

// TestOtherApplianceCannotVouch: a log verified under another appliance's
// key fails, so the chain is only as good as the key file.
func TestOtherApplianceCannotVouch(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	a.fill(t, 3)
	b.fill(t, 3)
	// Copy a's rows and head over b's.
	src := filepath.Join(a.dir, store.DBFile)
	b.raw(t,
		`ATTACH DATABASE '`+src+`' AS a`,
		`DELETE FROM audit`,
		`INSERT INTO audit SELECT * FROM a.audit`,
		`UPDATE settings SET value = (SELECT value FROM a.settings WHERE key = 'audit_head') WHERE key = 'audit_head'`,
	)
	rep := b.verify(t)
	if rep.OK() {
		t.Errorf("Verify of another appliance's log: got OK, want problems")
	}
	if rep := a.verify(t); !rep.OK() {
		t.Errorf("Verify of the original: got %q, want OK", rep.Problems)
	}
}

// TestCloseNeverStrandsAnAppend: appends racing Close each return, with
// their entry written or ErrClosed, and the chain stays whole.
func TestCloseNeverStrandsAnAppend(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.log.Append(context.Background(), audit.Entry{Kind: audit.KindSystem, Reason: "race", Detail: fmt.Sprint(i)})
			if err != nil && !errors.Is(err, audit.ErrClosed) {
				t.Errorf("append: %v", err)
			}
		}()
		if i == 32 {
			e.log.Close()
		}
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("an Append never returned after Close")
	}
	l2, _ := audit.New(e.st, nil)
	if rep, err := l2.Verify(t.Context()); err != nil || !rep.OK() {
		t.Fatalf("chain after the race: %+v %v", rep, err)
	}
}
