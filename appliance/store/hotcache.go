package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// hotCache keeps in memory what the login path reads on every request: user
// records (with their groups) by name, and the set of bind-account names
// (issue 15: a SQLite read per login was 15 % of a proxied login's CPU).
//
// It is never stale beyond what the rest of the appliance tolerates: every
// change to those tables moves change_counter (triggers, migration 013),
// whoever makes it. A transaction of this process reads the counter before
// it commits and drops the caches right after, so the next request sees its
// own writes (a failure count, a lock) at once; changes made by another
// process (the CLI) are noticed by polling the counter at most every
// pollEvery, well within the second the design allows.
type hotCache struct {
	gen atomic.Uint64 // moves on every change seen; entries of an older gen are gone

	mu       sync.Mutex
	counter  int64
	haveCtr  bool
	users    map[string]userEntry
	usersGen uint64
	binds    map[string]struct{} // nil: not loaded for bindsGen
	bindsGen uint64

	lastPoll atomic.Int64 // unix nanoseconds
	polling  sync.Mutex
}

type userEntry struct {
	u   User
	err error // nil or ErrNotFound
}

const (
	// maxCachedUsers bounds the user cache; a flood of made-up names
	// fills it and then empties it, never more.
	maxCachedUsers = 4096
	pollEvery      = 250 * time.Millisecond
)

// observe records the counter's value; a new value drops every entry.
func (c *hotCache) observe(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.haveCtr || n != c.counter {
		c.counter, c.haveCtr = n, true
		c.gen.Add(1)
	}
}

// drop forgets everything (a change the counter could not confirm).
func (c *hotCache) drop() { c.gen.Add(1) }

const counterQuery = `SELECT n FROM change_counter WHERE id = 1`

// pollChanges reads the counter when the last read is pollEvery old, one
// caller at a time (the others answer from the cache meanwhile).
func (s *Store) pollChanges(ctx context.Context) {
	c := &s.hot
	now := time.Now().UnixNano()
	if now-c.lastPoll.Load() < int64(pollEvery) || !c.polling.TryLock() {
		return
	}
	defer c.polling.Unlock()
	var n int64
	if err := s.q.QueryRowContext(ctx, counterQuery).Scan(&n); err != nil {
		// Unreadable: trust nothing cached, and try again next time.
		c.drop()
		return
	}
	c.lastPoll.Store(now)
	c.observe(n)
}

// CachedUserByName is UserByName for the login path: answered from memory
// when nothing changed since the record was read (see hotCache). The
// record's Groups are the caller's own copy.
func (s *Store) CachedUserByName(ctx context.Context, name string) (User, error) {
	s.pollChanges(ctx)
	c := &s.hot
	key := foldASCII(name)
	gen := c.gen.Load()
	c.mu.Lock()
	if c.usersGen != gen {
		c.users, c.usersGen = nil, gen
	}
	e, ok := c.users[key]
	c.mu.Unlock()
	if ok {
		u := e.u
		u.Groups = append([]string(nil), u.Groups...)
		return u, e.err
	}
	u, err := s.UserByName(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return u, err
	}
	c.mu.Lock()
	// Kept only if nothing changed while it was read: a write commits
	// before it moves gen, so a read that may predate it is not kept.
	if c.usersGen == gen && c.gen.Load() == gen {
		if c.users == nil || len(c.users) >= maxCachedUsers {
			c.users = make(map[string]userEntry, 64)
		}
		e := userEntry{u: u, err: err}
		e.u.Groups = append([]string(nil), u.Groups...)
		c.users[key] = e
	}
	c.mu.Unlock()
	return u, err
}

// IsBindAccount reports whether name is a bind account's, from a set of
// the names kept in memory and read again after any change.
func (s *Store) IsBindAccount(ctx context.Context, name string) (bool, error) {
	s.pollChanges(ctx)
	c := &s.hot
	gen := c.gen.Load()
	c.mu.Lock()
	if c.bindsGen == gen && c.binds != nil {
		_, ok := c.binds[foldASCII(name)]
		c.mu.Unlock()
		return ok, nil
	}
	c.mu.Unlock()
	rows, err := s.q.QueryContext(ctx, `SELECT name FROM bind_accounts`)
	if err != nil {
		return false, mapErr(err)
	}
	defer rows.Close()
	set := map[string]struct{}{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return false, mapErr(err)
		}
		set[foldASCII(n)] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return false, mapErr(err)
	}
	c.mu.Lock()
	if c.gen.Load() == gen {
		c.binds, c.bindsGen = set, gen
	}
	c.mu.Unlock()
	_, ok := set[foldASCII(name)]
	return ok, nil
}

// foldASCII lowers A-Z only, as SQLite's NOCASE does: folding more (Unicode)
// would make two names the database tells apart share one cache entry.
func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
