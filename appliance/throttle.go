package appliance

import (
	"sync"
	"time"
)

// Bind accounts (an EHR's search account) never lock: a secret that
// opens the whole directory to its holder must not be lockable by anyone
// who can reach the door, or the EHR stops working. They are throttled
// instead, per account and source address (issue 16, finding 2: 30 wrong
// secrets in 2 s, then the right one accepted): after bindFailLimit wrong
// secrets from one address within bindFailWindow, that address is refused
// for bindBlock, the right secret included; other addresses (the EHR
// server's own) are not affected.
const (
	bindFailLimit  = 5
	bindFailWindow = 5 * time.Minute
	bindBlock      = 5 * time.Minute
	// maxThrottled bounds the table: past it, the entry seen longest ago
	// is dropped, so a flood from many addresses costs no memory.
	maxThrottled = 4096
)

type throttle struct {
	mu sync.Mutex
	m  map[string]*throttleEntry
}

type throttleEntry struct {
	fails   int
	first   time.Time // of the failures being counted
	until   time.Time // blocked until
	touched time.Time
}

func newThrottle() *throttle { return &throttle{m: map[string]*throttleEntry{}} }

// blocked reports whether key is refused at now, and until when.
func (t *throttle) blocked(key string, now time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e == nil || !now.Before(e.until) {
		return time.Time{}, false
	}
	return e.until, true
}

// fail counts a failure for key and reports whether key is now blocked.
func (t *throttle) fail(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e == nil {
		if len(t.m) >= maxThrottled {
			t.evict(now)
		}
		e = &throttleEntry{first: now}
		t.m[key] = e
	}
	if now.Sub(e.first) > bindFailWindow {
		e.fails, e.first = 0, now
	}
	e.fails++
	e.touched = now
	if e.fails >= bindFailLimit {
		e.until, e.fails, e.first = now.Add(bindBlock), 0, now
		return true
	}
	return false
}

// clear forgets key's failures (a right secret).
func (t *throttle) clear(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

// evict drops the entry touched longest ago that is not blocking now, or
// else the oldest one.
func (t *throttle) evict(now time.Time) {
	var oldest string
	var at time.Time
	for k, e := range t.m {
		if now.Before(e.until) {
			continue
		}
		if oldest == "" || e.touched.Before(at) {
			oldest, at = k, e.touched
		}
	}
	if oldest == "" {
		for k, e := range t.m {
			if oldest == "" || e.touched.Before(at) {
				oldest, at = k, e.touched
			}
		}
	}
	delete(t.m, oldest)
}
