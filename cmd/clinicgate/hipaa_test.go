package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuditHIPAAExport(t *testing.T) {
	data := newData(t)
	mustCG(t, data, "correct horse battery", "user", "add", "dr.lee", "--password-stdin")
	day := time.Now().Format(time.DateOnly)
	out := mustCG(t, data, "", "audit", "hipaa", "--from", day, "--to", day)
	if !strings.Contains(out, "entries") || !strings.Contains(out, filepath.Join(data, "exports")) {
		t.Fatalf("output:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(data, "exports", "audit-*"))
	if len(files) != 4 {
		t.Fatalf("files %v", files)
	}
	for _, f := range files {
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", f, st.Mode().Perm())
		}
	}
	if _, err := cg(t, data, "", "audit", "hipaa", "--from", "yesterday", "--to", day); err == nil {
		t.Fatal("a bad date was taken")
	}
}
