// Package ratelog writes a warning at most once per interval and counts
// the ones it held back, so a flood of junk packets or refused connections
// cannot flood the log or fill the disk.
//
// It is a leaf: it imports only the standard library, so any door or the
// core may use it. It must not decide anything; it only logs.
package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// CountKey is the key of the number of lines held back since the last one
// written; it is added only when that number is not zero.
const CountKey = "suppressed_since_last"

// Logger writes at most one warning per interval. It is safe for
// concurrent use. One Logger covers one kind of event: lines of different
// kinds held back by one Logger are counted together.
type Logger struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu         sync.Mutex
	last       time.Time
	wrote      bool
	suppressed int
}

// New returns a Logger writing to l at most once per every. now is the
// clock (nil: time.Now); a nil l discards.
func New(l *slog.Logger, every time.Duration, now func() time.Time) *Logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Logger{log: l, every: every, now: now}
}

// Warn writes msg with args as a warning, unless a line was written less
// than an interval ago; then it only counts it.
func (r *Logger) Warn(msg string, args ...any) {
	r.mu.Lock()
	now := r.now()
	if age := now.Sub(r.last); r.wrote && age >= 0 && age < r.every {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.wrote, r.suppressed = now, true, 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args[:len(args):len(args)], CountKey, n)
	}
	// Written outside the lock: a slow log sink must not hold up the
	// callers that are only counting.
	r.log.Warn(msg, args...)
}
