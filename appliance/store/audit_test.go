package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// genesis stands in for the previous hash of the first row (package audit
// uses zeros).
var genesis = []byte("genesis")

func prevOr(h []byte) []byte {
	if h == nil {
		return genesis
	}
	return h
}

// appendRow appends a row with a made-up hash; the chain's MAC is package
// audit's business, the store only keeps it and the head.
func appendRow(t *testing.T, st *store.Store, user, outcome string) store.AuditRow {
	t.Helper()
	r, err := st.AppendAudit(t.Context(), func(prevSeq int64, prevHash []byte) (store.AuditRow, error) {
		return store.AuditRow{
			Seq: prevSeq + 1, At: now.Add(time.Duration(prevSeq) * time.Second), Kind: "decision",
			Client: "Office-AP", User: user, Outcome: outcome,
			PrevHash: prevOr(prevHash), Hash: []byte(fmt.Sprintf("hash-%d", prevSeq+1)),
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func seqs(rows []store.AuditRow) []int64 {
	var out []int64
	for _, r := range rows {
		out = append(out, r.Seq)
	}
	return out
}

func TestAuditAppendAndRead(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	if seq, hash, err := st.AuditHead(ctx); seq != 0 || hash != nil || err != nil {
		t.Fatalf("AuditHead of an empty log: got (%d, %x, %v), want (0, nil, nil)", seq, hash, err)
	}

	var gotPrev [][]byte
	for i, u := range []string{"alice", "bob", "Alice", "carol", "ALICE"} {
		_, err := st.AppendAudit(ctx, func(prevSeq int64, prevHash []byte) (store.AuditRow, error) {
			if prevSeq != int64(i) {
				t.Errorf("entry %d: build got prevSeq %d, want %d", i+1, prevSeq, i)
			}
			gotPrev = append(gotPrev, prevHash)
			outcome := "accept"
			if i%2 == 1 {
				outcome = "reject"
			}
			return store.AuditRow{
				Seq: prevSeq + 1, At: now.Add(time.Duration(i) * time.Millisecond), Kind: "decision",
				Client: "Office-AP", User: u, Outcome: outcome, Detail: `{"n":1}`,
				PrevHash: prevOr(prevHash), Hash: []byte(fmt.Sprintf("hash-%d", prevSeq+1)),
			}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if gotPrev[0] != nil {
		t.Errorf("first build: got prevHash %x, want nil", gotPrev[0])
	}
	for i := 1; i < len(gotPrev); i++ {
		if want := fmt.Sprintf("hash-%d", i); string(gotPrev[i]) != want {
			t.Errorf("build %d: got prevHash %q, want %q", i+1, gotPrev[i], want)
		}
	}

	seq, hash, err := st.AuditHead(ctx)
	if err != nil || seq != 5 || string(hash) != "hash-5" {
		t.Errorf("AuditHead: got (%d, %q, %v), want (5, hash-5, nil)", seq, hash, err)
	}

	tests := []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5}},
		{"after 3", store.AuditFilter{AfterSeq: 3}, []int64{4, 5}},
		{"user, any case", store.AuditFilter{User: "alice"}, []int64{1, 3, 5}},
		{"client, any case", store.AuditFilter{Client: "office-ap"}, []int64{1, 2, 3, 4, 5}},
		{"outcome", store.AuditFilter{Outcome: "reject"}, []int64{2, 4}},
		{"first two", store.AuditFilter{Limit: 2}, []int64{1, 2}},
		{"newest two, oldest first", store.AuditFilter{Limit: 2, Newest: true}, []int64{4, 5}},
		{"newest of a user", store.AuditFilter{User: "ALICE", Limit: 2, Newest: true}, []int64{3, 5}},
		{"no match", store.AuditFilter{User: "dave"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := st.AuditRows(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(rows); !slices.Equal(got, tt.want) {
				t.Errorf("AuditRows(%+v): got %v, want %v", tt.f, got, tt.want)
			}
		})
	}

	rows, err := st.AuditRows(ctx, store.AuditFilter{AfterSeq: 2, Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatalf("AuditRows: got (%d rows, %v), want 1", len(rows), err)
	}
	r := rows[0]
	if r.Seq != 3 || r.User != "Alice" || r.Kind != "decision" || r.Detail != `{"n":1}` ||
		!r.At.Equal(now.Add(2*time.Millisecond)) || string(r.PrevHash) != "hash-2" || string(r.Hash) != "hash-3" {
		t.Errorf("row 3: got %+v", r)
	}

	var walked []int64
	if err := st.EachAuditRow(ctx, func(r store.AuditRow) error { walked = append(walked, r.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(walked, []int64{1, 2, 3, 4, 5}) {
		t.Errorf("EachAuditRow: got %v, want 1-5", walked)
	}
	stop := errors.New("stop")
	if err := st.EachAuditRow(ctx, func(store.AuditRow) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("EachAuditRow with a failing callback: got %v, want %v", err, stop)
	}
}

// TestAuditEntryNeverForks: an entry that does not follow the last one is
// refused, and a failed append leaves neither a row nor a new head.
func TestAuditEntryNeverForks(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	appendRow(t, st, "alice", "accept")
	appendRow(t, st, "bob", "accept")
	boom := errors.New("boom")
	tests := []struct {
		name  string
		build func(int64, []byte) (store.AuditRow, error)
		want  error
	}{
		{"reuses a sequence number", func(prev int64, h []byte) (store.AuditRow, error) {
			return store.AuditRow{Seq: prev, Kind: "x", PrevHash: prevOr(h), Hash: []byte("h")}, nil
		}, nil},
		{"skips a sequence number", func(prev int64, h []byte) (store.AuditRow, error) {
			return store.AuditRow{Seq: prev + 2, Kind: "x", PrevHash: prevOr(h), Hash: []byte("h")}, nil
		}, nil},
		{"build fails", func(int64, []byte) (store.AuditRow, error) { return store.AuditRow{}, boom }, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.AppendAudit(ctx, tt.build)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("AppendAudit: got %v, want an error (%v)", err, tt.want)
			}
			seq, hash, err := st.AuditHead(ctx)
			if err != nil || seq != 2 || !bytes.Equal(hash, []byte("hash-2")) {
				t.Errorf("head after a refused append: got (%d, %q, %v), want (2, hash-2, nil)", seq, hash, err)
			}
			rows, err := st.AuditRows(ctx, store.AuditFilter{})
			if err != nil || !slices.Equal(seqs(rows), []int64{1, 2}) {
				t.Errorf("rows after a refused append: got (%v, %v), want [1 2]", seqs(rows), err)
			}
		})
	}
}

// TestAuditAppendInCallersTx: an entry appended inside a transaction that
// rolls back disappears with the change it described.
func TestAuditAppendInCallersTx(t *testing.T) {
	st := open(t, t.TempDir())
	ctx := t.Context()
	appendRow(t, st, "alice", "accept")
	boom := errors.New("boom")
	err := st.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.CreateUser(ctx, store.User{Name: "bob"}, now); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, func(prev int64, h []byte) (store.AuditRow, error) {
			return store.AuditRow{Seq: prev + 1, Kind: "admin", PrevHash: prevOr(h), Hash: []byte("hash-2")}, nil
		}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithTx: got %v, want %v", err, boom)
	}
	if seq, _, err := st.AuditHead(ctx); seq != 1 || err != nil {
		t.Errorf("head after rollback: got (%d, %v), want (1, nil)", seq, err)
	}
	withTx(t, st, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.AppendAudit(ctx, func(prev int64, h []byte) (store.AuditRow, error) {
			return store.AuditRow{Seq: prev + 1, Kind: "admin", PrevHash: prevOr(h), Hash: []byte("hash-2")}, nil
		})
		return err
	})
	if seq, hash, err := st.AuditHead(ctx); seq != 2 || string(hash) != "hash-2" || err != nil {
		t.Errorf("head after commit: got (%d, %q, %v), want (2, hash-2, nil)", seq, hash, err)
	}
}

func TestDamagedAuditHeadReported(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	appendRow(t, st, "alice", "accept")
	for _, v := range []string{"", "1", "x:00", "1:zz"} {
		exec(t, raw(t, dir), `UPDATE settings SET value = ? WHERE key = 'audit_head'`, v)
		if seq, hash, err := st.AuditHead(t.Context()); err == nil {
			t.Errorf("AuditHead with head %q: got (%d, %x, nil), want an error", v, seq, hash)
		}
	}
}
