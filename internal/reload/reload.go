// Package reload holds a value read from the store and reads it again at
// most once per interval: the one "reload at most once a second" cache of
// the gate's site settings, its client tables and the LDAP directory's
// tree. It imports nothing of clinicgate.
package reload

import (
	"context"
	"sync"
	"time"
)

// Value holds a value read from the store and reads it again at most
// once per interval, so that a change made by the CLI or the console
// applies within that interval without a restart, while a flood of logins
// costs one store read per interval, not one per login.
//
// load receives the value it returned last (the zero value the first
// time, with have false), so it can keep that value when a cheap version
// check says nothing changed.
type Value[T any] struct {
	every time.Duration
	now   func() time.Time
	load  func(ctx context.Context, last T, have bool) (T, error)
	// KeepLastGood answers from the last value read when a reload fails.
	// Without it the error is returned, and the next call tries again.
	KeepLastGood bool

	mu   sync.Mutex
	v    T
	have bool
	at   time.Time
}

// New returns a Value that calls load at most once per every (now is the
// clock; nil: time.Now).
func New[T any](every time.Duration, now func() time.Time, load func(context.Context, T, bool) (T, error)) *Value[T] {
	if now == nil {
		now = time.Now
	}
	return &Value[T]{every: every, now: now, load: load}
}

// Get returns the value, reading it again when the last read is an
// interval old (or the clock went back past it).
func (c *Value[T]) Get(ctx context.Context) (T, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if age := now.Sub(c.at); c.have && age >= 0 && age < c.every {
		return c.v, nil
	}
	v, err := c.load(ctx, c.v, c.have)
	if err != nil {
		if c.have && c.KeepLastGood {
			// The time of the last good read stays, so the next call
			// tries again.
			return c.v, nil
		}
		var zero T
		return zero, err
	}
	c.v, c.have, c.at = v, true, now
	return v, nil
}
