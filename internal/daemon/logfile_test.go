package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The daemon's messages reach daemon.log for the console; decisions do
// not; the file rotates at its bound and keeps one predecessor.
func TestLogFileForTheConsole(t *testing.T) {
	dir := t.TempDir()
	lf, err := openLogFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	var journal strings.Builder
	log := slog.New(teeHandler{main: slog.NewTextHandler(&journal, nil), file: slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo})})
	log.Warn("upstream down", "upstream", "entra")
	log.Info("decision", "user", "alice")
	log.Debug("noise")
	lf.Flush()
	b, _ := os.ReadFile(filepath.Join(dir, LogFile))
	if !strings.Contains(string(b), `msg="upstream down" upstream=entra`) || strings.Contains(string(b), "decision") || strings.Contains(string(b), "noise") {
		t.Fatalf("daemon.log:\n%s", b)
	}
	if !strings.Contains(journal.String(), "decision") {
		t.Fatalf("the journal lost a decision:\n%s", journal.String())
	}
	if st, _ := os.Stat(filepath.Join(dir, LogFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	for range logFileMax / 100 * 3 {
		log.Info("filler " + strings.Repeat("x", 80))
	}
	lf.Close()
	for _, f := range []string{LogFile, LogFile + ".1"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() > logFileMax {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, LogFile+".2")); err == nil {
		t.Fatal("more than two files kept")
	}
}

// The running daemon writes its start to daemon.log, and the admin
// service reads it back for the console.
func TestDaemonLogThroughAdmin(t *testing.T) {
	d := open(t, loopback(t))
	d.log.Warn("something the contractor should see")
	d.logFile.Flush()
	svc, err := d.Admin("test")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := svc.DaemonLog(10)
	if err != nil || len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "something the contractor should see") {
		t.Fatalf("DaemonLog: %q %v", lines, err)
	}
}
