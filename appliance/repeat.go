package appliance

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// maxRepeat bounds the repeat-login table; when it is full the oldest
// entry goes, so a flood of logins costs a hash, never memory.
const maxRepeat = 4096

// repeatLogins lets a local user whose password this process verified in
// the last few minutes (the site setting repeat_login_seconds; 0, the
// default, turns it off) be checked again without the slow hash: a shift
// change, or 802.1X re-authenticating every device of a ward at once
// (issue 15 goal 3).
//
// Why this is safe:
//   - What is kept is an HMAC-SHA256 of the password (with the user's id,
//     record version and stored hash) under a key drawn from crypto/rand
//     when the gate starts. The key and the table live only in this
//     process's memory: nothing is written to disk, nothing is logged, and
//     a restart forgets both. A memory dump reveals at worst a keyed MAC
//     per recent user, which is no faster to guess passwords against than
//     the stored argon2id hash is slow: an attacker who can read this
//     process's memory can read the passwords as they arrive anyway.
//   - Only the right password matches; anything else falls through to the
//     full argon2id check, which costs and counts what it always did, and
//     the entry is dropped. An entry is dropped too when the account is
//     locked or disabled or its password changes (the record's version
//     and hash are inside the MAC, so a stale entry cannot match anyway).
//   - Only the first factor is skipped: lockout, disable, expiry, hours,
//     groups, device rules and MFA are all checked as on any login.
//   - The table is bounded (maxRepeat) and each entry lasts at most the
//     window, so it costs at most a few hundred KiB.
type repeatLogins struct {
	key []byte

	mu sync.Mutex
	m  map[int64]repeatEntry
}

type repeatEntry struct {
	mac [sha256.Size]byte
	at  time.Time
}

func newRepeatLogins() *repeatLogins {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		// crypto/rand does not fail on Linux; were it to, the feature
		// stays off rather than run with a known key.
		return &repeatLogins{}
	}
	return &repeatLogins{key: key, m: map[int64]repeatEntry{}}
}

func (t *repeatLogins) sum(u store.User, pw secrets.Secret) [sha256.Size]byte {
	m := hmac.New(sha256.New, t.key)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(u.ID))
	m.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(u.Version))
	m.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(u.PasswordHash)))
	m.Write(n[:])
	m.Write([]byte(u.PasswordHash))
	m.Write(pw)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// match reports whether pw is the password verified for u within window.
// A miss drops u's entry: a wrong password, or the account changed.
func (t *repeatLogins) match(u store.User, pw secrets.Secret, window time.Duration, now time.Time) bool {
	if t.key == nil || window <= 0 || u.PasswordHash == "" || len(pw) == 0 {
		return false
	}
	t.mu.Lock()
	e, ok := t.m[u.ID]
	t.mu.Unlock()
	if !ok {
		return false
	}
	want := t.sum(u, pw)
	if age := now.Sub(e.at); age < 0 || age > window || !hmac.Equal(e.mac[:], want[:]) {
		t.forget(u.ID)
		return false
	}
	return true
}

// remember records that pw was verified for u at now.
func (t *repeatLogins) remember(u store.User, pw secrets.Secret, now time.Time) {
	if t.key == nil || u.PasswordHash == "" || len(pw) == 0 {
		return
	}
	e := repeatEntry{mac: t.sum(u, pw), at: now}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[u.ID]; !ok && len(t.m) >= maxRepeat {
		var oldest int64
		first := true
		for id, x := range t.m {
			if first || x.at.Before(t.m[oldest].at) {
				oldest, first = id, false
			}
		}
		delete(t.m, oldest)
	}
	t.m[u.ID] = e
}

// forget drops u's entry (a failed attempt, a lock, a disable).
func (t *repeatLogins) forget(id int64) {
	if t.key == nil {
		return
	}
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

// clear drops every entry (the window was set to 0).
func (t *repeatLogins) clear() {
	if t.key == nil {
		return
	}
	t.mu.Lock()
	clear(t.m)
	t.mu.Unlock()
}

func (t *repeatLogins) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
