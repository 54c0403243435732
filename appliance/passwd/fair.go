package passwd

import (
	"context"
	"sync"
)

// fairKey is the context key of WithSource.
type fairKey struct{}

// WithSource names who a hash is done for (a NAS's or an LDAP client's
// address), so that hashes waiting for a slot are served a source at a
// time in turn: one NAS flooding logins then delays another's by a round
// of the slots, not by everything it queued first (issue 16 finding 8).
// Hashes without a source share one turn.
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, fairKey{}, source)
}

// fairSem is a counting semaphore whose waiters are served round-robin by
// source, FIFO within a source. Its memory is the waiters themselves.
type fairSem struct {
	n     int // slots
	mu    sync.Mutex
	free  int
	waits map[string][]chan struct{}
	ring  []string // sources with waiters, in turn order
}

func newFairSem(n int) *fairSem { return &fairSem{n: n, free: n, waits: map[string][]chan struct{}{}} }

// size is the number of slots; held how many are taken.
func (s *fairSem) size() int { return s.n }

func (s *fairSem) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n - s.free
}

func (s *fairSem) acquire(ctx context.Context) error {
	src, _ := ctx.Value(fairKey{}).(string)
	s.mu.Lock()
	if s.free > 0 && len(s.ring) == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if len(s.waits[src]) == 0 {
		s.ring = append(s.ring, src)
	}
	s.waits[src] = append(s.waits[src], ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-ch:
		// Granted meanwhile: pass the slot on.
		s.releaseLocked()
		return ctx.Err()
	default:
	}
	q := s.waits[src]
	for i, c := range q {
		if c == ch {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(s.waits, src)
		for i, r := range s.ring {
			if r == src {
				s.ring = append(s.ring[:i], s.ring[i+1:]...)
				break
			}
		}
	} else {
		s.waits[src] = q
	}
	return ctx.Err()
}

func (s *fairSem) release() {
	s.mu.Lock()
	s.releaseLocked()
	s.mu.Unlock()
}

// releaseLocked gives the slot to the next source in turn, or frees it.
func (s *fairSem) releaseLocked() {
	if len(s.ring) == 0 {
		s.free++
		return
	}
	src := s.ring[0]
	s.ring = s.ring[1:]
	q := s.waits[src]
	ch := q[0]
	q[0] = nil
	if q = q[1:]; len(q) > 0 {
		s.waits[src] = q
		s.ring = append(s.ring, src)
	} else {
		delete(s.waits, src)
	}
	close(ch)
}
