package appliance

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// maxRemembered bounds the remembered-MFA table; when it is full the entry
// closest to expiry is dropped, so a flood of logins costs a code prompt,
// never memory.
const maxRemembered = 4096

// remembered records codes verified recently, per user, client and source
// address, for clients whose policy sets MFARemember (an EHR binding again
// every few minutes with the password the user typed once). Entries are
// keyed by a hash and void once the user record or the enrolment changes
// (password reset, disable, new enrolment).
type remembered struct {
	mu sync.Mutex
	m  map[[32]byte]rememberEntry
}

type rememberEntry struct {
	expires time.Time
	version int64 // the user's record version when the code was verified
}

func newRemembered() *remembered { return &remembered{m: map[[32]byte]rememberEntry{}} }

func rememberKey(r *run, seed []byte) [32]byte {
	h := sha256.New()
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(r.user.ID))
	h.Write(id[:])
	for _, s := range []string{r.req.Client.Name, r.req.Source.String()} {
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	h.Write([]byte{0})
	h.Write(seed)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (t *remembered) ok(k [32]byte, version int64, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, found := t.m[k]
	if !found {
		return false
	}
	if !now.Before(e.expires) || e.version != version {
		delete(t.m, k)
		return false
	}
	return true
}

func (t *remembered) put(k [32]byte, version int64, expires, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, found := t.m[k]; !found && len(t.m) >= maxRemembered {
		var oldest [32]byte
		var first time.Time
		for key, e := range t.m {
			if !now.Before(e.expires) {
				delete(t.m, key)
				continue
			}
			if first.IsZero() || e.expires.Before(first) {
				oldest, first = key, e.expires
			}
		}
		if len(t.m) >= maxRemembered {
			delete(t.m, oldest)
		}
	}
	t.m[k] = rememberEntry{expires: expires, version: version}
}

func (t *remembered) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
