package appliance

import (
	"crypto/rand"
	"io"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// challenges holds pending MFA challenges: a RADIUS State value issued with
// an Access-Challenge, bound to one user and one client, good once, for a
// short time. The table is bounded; when full of live challenges new ones
// are refused (the login fails) rather than memory growing.
type challenges struct {
	mu    sync.Mutex
	max   int
	items map[string]challenge
	rand  io.Reader
}

type challenge struct {
	user    string // as verified
	typed   string // as the person typed it (CLINIC\alice for alice)
	userID  int64
	client  string
	source  string
	expires time.Time
	groups  []string // as the upstream verified them
	notes   []string // carried into the final decision's audit
	// passthrough are the upstream's reply attributes, granted with the
	// final Accept.
	passthrough []upstream.ReplyAttribute
	// push, for a push MFA challenge, is the push its answer polls;
	// provider names the provider a typed code is checked with.
	push     *pushTxn
	provider string
}

// stateLen is the State attribute's length: 128 random bits.
const stateLen = 16

func newChallenges(max int, rnd io.Reader) *challenges {
	if rnd == nil {
		rnd = rand.Reader
	}
	return &challenges{max: max, items: make(map[string]challenge), rand: rnd}
}

// put stores c and returns its State value; ok is false when the table is
// full.
func (t *challenges) put(c challenge, now time.Time) ([]byte, bool) {
	state := make([]byte, stateLen)
	if _, err := io.ReadFull(t.rand, state); err != nil {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.items) >= t.max {
		for k, v := range t.items {
			if !now.Before(v.expires) {
				delete(t.items, k)
			}
		}
		if len(t.items) >= t.max {
			return nil, false
		}
	}
	t.items[string(state)] = c
	return state, true
}

// take removes and returns the challenge for state. A state is good once,
// whatever happens next.
func (t *challenges) take(state []byte) (challenge, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.items[string(state)]
	if ok {
		delete(t.items, string(state))
	}
	return c, ok
}

func (t *challenges) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.items)
}
