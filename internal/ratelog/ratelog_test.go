package ratelog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines records what reaches the log, one "level msg key=value…" string a
// record.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lines) WithGroup(string) slog.Handler            { return l }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		s += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, s)
	return nil
}

func (l *lines) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.got, "\n")
	l.got = nil
	return s
}

// newAt returns a Logger writing to out, on a clock the test sets in *now.
func newAt(every time.Duration) (*Logger, *lines, *time.Time) {
	out := &lines{}
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	return New(slog.New(out), every, func() time.Time { return now }), out, &now
}

func TestAFloodWritesOneLinePerInterval(t *testing.T) {
	r, out, now := newAt(10 * time.Second)

	r.Warn("dropped a packet", "from", "10.0.0.1")
	for range 5 {
		*now = (*now).Add(time.Second)
		r.Warn("dropped a packet", "from", "10.0.0.2")
	}
	if got, want := out.take(), "WARN dropped a packet from=10.0.0.1"; got != want {
		t.Fatalf("after a flood within one interval got\n%s\nwant\n%s", got, want)
	}
	*now = (*now).Add(5 * time.Second) // 10 s after the first line
	r.Warn("dropped a packet", "from", "10.0.0.3")
	if got, want := out.take(), "WARN dropped a packet from=10.0.0.3 suppressed_since_last=5"; got != want {
		t.Fatalf("once the interval passed got\n%s\nwant\n%s", got, want)
	}
	*now = (*now).Add(time.Minute)
	r.Warn("dropped a packet")
	if got, want := out.take(), "WARN dropped a packet"; got != want {
		t.Fatalf("after a quiet interval got\n%s\nwant\n%s (no count when nothing was held back)", got, want)
	}
}

func TestClockGoingBackDoesNotSilenceTheLog(t *testing.T) {
	r, out, now := newAt(10 * time.Second)
	r.Warn("first")
	*now = (*now).Add(-time.Hour)
	r.Warn("second")
	if got, want := out.take(), "WARN first\nWARN second"; got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestCallersArgsAreNotModified(t *testing.T) {
	r, _, now := newAt(time.Second)
	r.Warn("x")
	r.Warn("x") // held back
	*now = (*now).Add(time.Second)
	args := make([]any, 2, 8)
	args[0], args[1] = "k", "v"
	r.Warn("x", args...)
	if got := args[:cap(args)][2]; got != nil {
		t.Fatalf("got %v written into the caller's slice, want it untouched", got)
	}
}
