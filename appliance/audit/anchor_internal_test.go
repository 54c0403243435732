package audit

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// TestFirstLayoutHeadFileUpgraded: a box updated from the version that
// kept one record (replaced by rename) goes on being checked against it,
// and its first append writes the two-record file.
func TestFirstLayoutHeadFileUpgraded(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(t.Context(), dir, store.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		if _, err := l.Append(t.Context(), Entry{Kind: KindAdmin, Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	seq, hash, err := st.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The first layout, as that version wrote it, naming entry 5: two
	// more than the database holds (a rollback it must go on reporting).
	v1 := func(seq int64, hash []byte) []byte {
		body := fmt.Appendf(nil, "%s\nhead %d %x\n", anchorMagicV1, seq, hash)
		return fmt.Appendf(body, "mac %x\n", l.anchorMAC(body))
	}
	if err := os.WriteFile(l.anchorPath(), v1(5, bytes.Repeat([]byte{1}, 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(t.Context())
	if err != nil || rep.OK() || !bytes.Contains([]byte(fmt.Sprint(rep.Problems)), []byte("entries up to 5 were written")) {
		t.Fatalf("Verify with a first-layout file ahead of the log: %q, %v", rep.Problems, err)
	}
	// The honest upgrade: the file names the database's head.
	if err := os.WriteFile(l.anchorPath(), v1(seq, hash), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(t.Context()); err != nil || !rep.OK() {
		t.Fatalf("Verify with a first-layout file: %q, %v", rep.Problems, err)
	}
	if _, err := l.Append(t.Context(), Entry{Kind: KindAdmin, Reason: "y"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.anchorPath())
	if err != nil || len(b) != 2*anchorSlot || !bytes.HasPrefix(b, []byte(anchorMagic+"\n")) {
		t.Fatalf("after an append: %d bytes, %v; want the two-record layout", len(b), err)
	}
	if rep, err := l.Verify(t.Context()); err != nil || !rep.OK() || rep.Entries != 4 {
		t.Fatalf("Verify after the upgrade: %+v, %v", rep, err)
	}
}
