package radius

import (
	"sync"
	"time"
)

// dedup remembers requests recently seen (RFC 5080 §2.2.2): a retransmit of
// a request being decided is dropped, and a retransmit of one already
// answered gets the same answer again, byte for byte, without a second
// decision (a second decision would burn the TOTP code and count a failure
// twice). The table is bounded: the oldest entry goes first.
type dedup struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	items map[string]*dedupEntry
	order []string // insertion order, ring
	head  int
}

// retransmitted is a decision still pending (a push MFA in flight): told
// of each retransmit, so the gate learns the NAS's timer.
type retransmitted interface {
	Retransmit(now time.Time)
	Arrived(first time.Time, resent []time.Time)
}

// maxEarly bounds the resends remembered while a request is decided.
const maxEarly = 8

type dedupEntry struct {
	reply   []byte // nil while the request is being decided
	pending retransmitted
	// arrived is the first sight; early the resends seen while it was
	// being decided, handed to a pending decision.
	arrived time.Time
	early   []time.Time
	expires time.Time
	slot    int // its place in order; a key seen again gets a new one
}

func newDedup(max int, ttl time.Duration) *dedup {
	// The map grows with use up to max entries; allocated at full size it
	// was 1.7 MiB of an idle daemon's memory.
	return &dedup{ttl: ttl, max: max, items: map[string]*dedupEntry{}, order: make([]string, max)}
}

// begin reports what to do with a request: a cached reply to resend, or
// inProgress to drop it, or neither (first sight: decide it, then finish).
func (d *dedup) begin(key string, now time.Time) (reply []byte, inProgress bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.items[key]; ok && now.Before(e.expires) {
		if e.reply == nil {
			if e.pending != nil {
				e.pending.Retransmit(now)
			} else if len(e.early) < maxEarly {
				e.early = append(e.early, now)
			}
			return nil, true
		}
		return e.reply, false
	}
	// The slot may name a key since forgotten or seen again in a newer
	// slot: evict only the entry that lives here.
	if old := d.order[d.head]; old != "" {
		if e, ok := d.items[old]; ok && e.slot == d.head {
			delete(d.items, old)
		}
	}
	d.order[d.head] = key
	d.items[key] = &dedupEntry{expires: now.Add(d.ttl), slot: d.head, arrived: now}
	d.head = (d.head + 1) % d.max
	return nil, false
}

// finish stores the reply for key (nil: forget the key, so a retransmit is
// decided afresh, as after a dropped request).
func (d *dedup) finish(key string, reply []byte, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.items[key]
	if !ok {
		return
	}
	if reply == nil {
		delete(d.items, key)
		return
	}
	e.reply, e.pending, e.early, e.expires = reply, nil, nil, now.Add(d.ttl)
}

// hold marks key's request as pending on p until until: its retransmits
// are dropped (and reported to p) rather than decided again.
func (d *dedup) hold(key string, p retransmitted, until time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.items[key]; ok {
		e.pending, e.expires = p, until
		p.Arrived(e.arrived, e.early)
		e.early = nil
	}
}
