package radius

import (
	"slices"
	"sync"
	"time"
)

// DropStat counts one cause of dropped requests, with the last one's
// client and source: what the console shows, since the most common
// set-up mistakes (a wrong shared secret, Message-Authenticator off on
// the NAS, a NAS that is no client) produce no reply and so no decision
// to see (issue 14).
type DropStat struct {
	Cause  string
	Count  int64
	Client string // "" for a source that is no client
	From   string
	Last   time.Time
}

// drops is bounded by the number of causes (a dozen).
type drops struct {
	mu sync.Mutex
	m  map[string]*DropStat
}

func (d *drops) record(cause, client, from string, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]*DropStat{}
	}
	st := d.m[cause]
	if st == nil {
		st = &DropStat{Cause: cause}
		d.m[cause] = st
	}
	st.Count++
	st.Client, st.From, st.Last = client, from, now
}

// Drops returns the counts so far, the latest first.
func (s *Server) Drops() []DropStat {
	s.drops.mu.Lock()
	defer s.drops.mu.Unlock()
	out := make([]DropStat, 0, len(s.drops.m))
	for _, st := range s.drops.m {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b DropStat) int { return b.Last.Compare(a.Last) })
	return out
}

// dropped counts a dropped request in the metrics and for Drops.
func (s *Server) dropped(cause, client, from string) {
	s.Metrics.Drop(door, cause)
	s.drops.record(cause, client, from, s.Now())
}
