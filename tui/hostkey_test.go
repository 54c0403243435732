package tui_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicgate/clinicgate/tui"
)

// After a power cut the host key file can be empty; the daemon must make
// a new one, not refuse to start.
func TestDamagedHostKeyIsMadeAgain(t *testing.T) {
	p := filepath.Join(t.TempDir(), tui.HostKeyFile)
	fp1, renewed, err := tui.EnsureHostKey(p)
	if err != nil || renewed {
		t.Fatalf("first: %v, renewed %v", err, renewed)
	}
	if fp, renewed, err := tui.EnsureHostKey(p); err != nil || renewed || fp != fp1 {
		t.Fatalf("second start must keep the key: %s vs %s, renewed %v, %v", fp, fp1, renewed, err)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tui.HostKeyFingerprint(p); err == nil {
		t.Fatal("an empty key file was read as a key")
	}
	fp2, renewed, err := tui.EnsureHostKey(p)
	if err != nil || !renewed || fp2 == fp1 {
		t.Fatalf("empty key: %s (was %s), renewed %v, %v", fp2, fp1, renewed, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}
