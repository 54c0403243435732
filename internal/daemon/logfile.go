package daemon

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The daemon's own log for the console (issue 14: the images have no
// shell, so no journalctl). Besides standard error (the journal), the
// daemon's messages at INFO and above go to daemon.log in the data
// directory, which the console's l on the Dashboard reads. Decisions are
// left out: the Dashboard and the audit show them, and leaving them out
// keeps the file off the login path. The file is bounded: past
// logFileMax it becomes daemon.log.1 and a new one starts.

// LogFile is the file's name in the data directory.
const LogFile = "daemon.log"

// logFileMax bounds one file; two are kept.
const logFileMax = 512 << 10

// logFile is an appending, rotating, buffered file; Flush writes what is
// buffered (the status job calls it every few seconds).
type logFile struct {
	path string

	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	size int64
	last time.Time
}

func openLogFile(dir string) (*logFile, error) {
	l := &logFile{path: filepath.Join(dir, LogFile)}
	return l, l.open()
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.w, l.size = f, bufio.NewWriterSize(f, 16<<10), st.Size()
	return nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return len(p), nil // closed, or a rotation failed: the journal still has it
	}
	if l.size+int64(len(p)) > logFileMax {
		l.rotate()
		if l.f == nil {
			return len(p), nil
		}
	}
	n, err := l.w.Write(p)
	l.size += int64(n)
	if now := time.Now(); now.Sub(l.last) > time.Second {
		l.last = now
		_ = l.w.Flush()
	}
	return n, err
}

func (l *logFile) rotate() {
	_ = l.w.Flush()
	_ = l.f.Close()
	l.f = nil
	_ = os.Rename(l.path, l.path+".1")
	_ = l.open()
}

// Flush writes what is buffered.
func (l *logFile) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w != nil {
		_ = l.w.Flush()
	}
}

// Close flushes and closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	_ = l.w.Flush()
	err := l.f.Close()
	l.f = nil
	return err
}

// teeHandler sends each record to the daemon's own handler and, at INFO
// and above and when it is not a decision, to the file's.
type teeHandler struct {
	main, file slog.Handler
}

func (h teeHandler) Enabled(ctx context.Context, lvl slog.Level) bool {
	return h.main.Enabled(ctx, lvl) || h.file.Enabled(ctx, lvl)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.main.Enabled(ctx, r.Level) {
		err = h.main.Handle(ctx, r.Clone())
	}
	if r.Message != "decision" && h.file.Enabled(ctx, r.Level) {
		_ = h.file.Handle(ctx, r)
	}
	return err
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h.main.WithAttrs(as), h.file.WithAttrs(as)}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{h.main.WithGroup(name), h.file.WithGroup(name)}
}
