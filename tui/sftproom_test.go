package tui

import (
	"os"
	"path/filepath"
	"testing"
)

// incoming/ is bounded in all, not only per file: a full incoming/ refuses
// the next upload, and replacing a file does not count it twice.
func TestIncomingRoomBounded(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	room, err := incomingRoom(root, "a.deb")
	if err != nil || room <= 0 || room > maxIncoming {
		t.Fatalf("empty incoming/: room %d, %v", room, err)
	}
	// A sparse file as large as the whole allowance (no disk used).
	f, err := os.Create(filepath.Join(dir, "big.cgbackup"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxIncomingTotal); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := incomingRoom(root, "a.deb"); err == nil {
		t.Fatal("an upload was allowed past the total bound")
	}
	if room, err := incomingRoom(root, "big.cgbackup"); err != nil || room <= 0 {
		t.Fatalf("replacing the big file: room %d, %v", room, err)
	}
	w := &boundedWriter{limit: 10}
	if _, err := w.WriteAt(make([]byte, 11), 0); err == nil {
		t.Fatal("a write past the limit was taken")
	}
}
