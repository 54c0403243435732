package appliance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/policy"
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

// fail counts a bind-account failure for key and reports whether key is
// now blocked.
func (t *throttle) fail(key string, now time.Time) bool {
	return t.failN(key, now, bindFailLimit, bindFailWindow, bindBlock)
}

// failN counts a failure for key; limit failures within window block key
// for block. It reports whether key is now blocked.
func (t *throttle) failN(key string, now time.Time, limit int, window, block time.Duration) bool {
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
	if now.Sub(e.first) > window {
		e.fails, e.first = 0, now
	}
	e.fails++
	e.touched = now
	if e.fails >= limit {
		e.until, e.fails, e.first = now.Add(block), 0, now
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

// The smart lockout of user accounts (issue 16, finding 2). Anyone who
// can send a login used to be able to lock every account: five wrong
// passwords each from one NAS. Now failures are counted per account and
// source (the client, the address the request came from, and the
// station's Calling-Station-Id where there is one): lockout_threshold
// failures block that source for that account for lockout_minutes, and
// other sources (the user's own laptop) go on working. The account itself
// locks only at accountLockFactor times the threshold in a row, which one
// blocked source cannot reach: it takes failures from several.
const accountLockFactor = 3

// loginSource keys a user's failures by where they come from.
func loginSource(r *run, user string) string {
	station := r.req.Device
	if mac, err := policy.NormalizeMAC(station); err == nil {
		station = mac
	}
	return strings.ToLower(user) + "\x00" + r.req.Client.Name + "\x00" + r.req.Source.Unmap().String() + "\x00" + station
}

// describeSource says which source a block is for, for the story.
func describeSource(r *run) string {
	s := fmt.Sprintf("client %s, address %s", r.req.Client.Name, r.req.Source)
	if r.req.Device != "" {
		s += ", station " + r.req.Device
	}
	return s
}

// Throttled is one source whose failures are being counted, for the
// console (internal/daemon reports them in the daemon's status).
type Throttled struct {
	// Kind is "login" (a user's account from one source) or "bind" (a
	// bind account from one address).
	Kind    string    `json:"kind"`
	User    string    `json:"user"`
	Client  string    `json:"client,omitempty"`
	Address string    `json:"address"`
	Station string    `json:"station,omitempty"`
	Fails   int       `json:"fails"`          // counted since First (0 while blocked)
	Until   time.Time `json:"until,omitzero"` // refused until, when blocked
	Last    time.Time `json:"last"`
}

// snapshot lists the entries with failures counted within window or
// blocked at now, the latest first, at most n.
func (t *throttle) snapshot(kind string, now time.Time, window time.Duration, n int) []Throttled {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Throttled
	for k, e := range t.m {
		blocked := now.Before(e.until)
		if !blocked && (e.fails == 0 || now.Sub(e.first) > window) {
			continue
		}
		f := strings.Split(k, "\x00")
		th := Throttled{Kind: kind, User: f[0], Fails: e.fails, Last: e.touched}
		if blocked {
			th.Until = e.until
		}
		switch {
		case kind == "bind" && len(f) == 2:
			th.Address = f[1]
		case len(f) == 4:
			th.Client, th.Address, th.Station = f[1], f[2], f[3]
		}
		out = append(out, th)
	}
	slices.SortFunc(out, func(a, b Throttled) int { return b.Last.Compare(a.Last) })
	return out[:min(len(out), n)]
}

// Throttled lists the sources being slowed down now, blocked ones and
// those with failures counted, the latest first (at most 50): the smart
// lockout's counters, for the console.
func (g *Gate) Throttled(ctx context.Context, now time.Time) []Throttled {
	site, err := g.site.Get(ctx)
	window := 15 * time.Minute
	if err == nil && site.LockoutDuration > 0 {
		window = site.LockoutDuration
	}
	out := append(g.loginThrottle.snapshot("login", now, window, 50), g.bindThrottle.snapshot("bind", now, bindFailWindow, 50)...)
	slices.SortFunc(out, func(a, b Throttled) int { return b.Last.Compare(a.Last) })
	return out[:min(len(out), 50)]
}
