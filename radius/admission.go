package radius

import (
	"net/netip"
	"sync"
	"time"
)

// admission decides which waiting request a free worker takes (issue 15
// goal 2, issue 16 finding 8).
//
// The old door had one FIFO of 256 packets in front of its workers. It was
// sized for argon2id work, yet it also held proxied requests that cost a
// fraction of a millisecond: a burst of 2000 of them was mostly shed while
// the CPU idled, and one NAS flooding unknown names filled the queue that
// every other NAS shared, so their logins waited or were dropped.
//
// Now each source address has its own FIFO and workers take from them in
// turn. The costly work is bounded where it is done (the password hasher
// runs at most one hash per CPU, whatever waits in front of it), so the
// queue can be deep: it is bounded in packets and in bytes, a few MiB on a
// Raspberry Pi. One source may hold at most half of it, and while other
// sources wait, at most a quarter of the workers; alone it may use them
// all. A packet that waited longer than maxWait is dropped when its turn
// comes: the NAS has retransmitted it by then, and its retransmit is the
// one worth answering.
type admission struct {
	mu      sync.Mutex
	wake    *sync.Cond
	sources map[netip.Addr]*sourceQueue
	ring    []*sourceQueue // sources with packets waiting, in turn order
	n       int            // packets waiting
	bytes   int            // their size
	closed  bool

	maxPackets, maxBytes, perSource, perSourceBusy int
	maxWait                                        time.Duration
	now                                            func() time.Time
}

type sourceQueue struct {
	addr   netip.Addr
	q      []queued
	busy   int  // workers on this source's packets now
	inRing bool // has packets waiting and is in ring
}

type queued struct {
	j  job
	at time.Time
}

func newAdmission(maxPackets, maxBytes, perSource, perSourceBusy int, maxWait time.Duration, now func() time.Time) *admission {
	a := &admission{
		sources: map[netip.Addr]*sourceQueue{}, maxPackets: maxPackets, maxBytes: maxBytes,
		perSource: perSource, perSourceBusy: perSourceBusy, maxWait: maxWait, now: now,
	}
	a.wake = sync.NewCond(&a.mu)
	return a
}

// push queues j from src; false means it was refused (full, or closed)
// and the caller drops it.
func (a *admission) push(src netip.Addr, j job) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.n >= a.maxPackets || a.bytes+len(j.buf) > a.maxBytes {
		return false
	}
	s := a.sources[src]
	if s == nil {
		s = &sourceQueue{addr: src}
		a.sources[src] = s
	}
	if len(s.q) >= a.perSource {
		return false
	}
	s.q = append(s.q, queued{j: j, at: a.now()})
	a.n++
	a.bytes += len(j.buf)
	if !s.inRing {
		s.inRing = true
		a.ring = append(a.ring, s)
	}
	a.wake.Signal()
	return true
}

// pop waits for a packet and returns it with its source, to hand back to
// done when the work is finished; stale are the packets found too old on
// the way, for the caller to count. ok is false once closed and empty.
func (a *admission) pop() (j job, src *sourceQueue, stale []job, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		for len(a.ring) == 0 {
			if a.closed {
				return job{}, nil, stale, false
			}
			a.wake.Wait()
		}
		// The first source in turn that is not over its share of the
		// workers; if every waiting source is, the first one (the work
		// conserves: a lone source uses every worker).
		pick := 0
		if len(a.ring) > 1 {
			for i, s := range a.ring {
				if s.busy < a.perSourceBusy {
					pick = i
					break
				}
			}
		}
		s := a.ring[pick]
		q := s.q[0]
		s.q[0] = queued{}
		s.q = s.q[1:]
		a.n--
		a.bytes -= len(q.j.buf)
		// Its turn is used: to the back of the ring, or out of it.
		a.ring = append(a.ring[:pick], a.ring[pick+1:]...)
		if len(s.q) > 0 {
			a.ring = append(a.ring, s)
		} else {
			s.inRing = false
			s.q = nil // let a flood's backing array go
		}
		if a.maxWait > 0 && a.now().Sub(q.at) > a.maxWait {
			stale = append(stale, q.j)
			a.forget(s)
			continue
		}
		s.busy++
		return q.j, s, stale, true
	}
}

// done hands back a source a worker took from pop.
func (a *admission) done(s *sourceQueue) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s.busy--
	a.forget(s)
}

// forget drops an idle source's entry, so the map holds only sources with
// work: it is bounded by the packets waiting and the workers.
func (a *admission) forget(s *sourceQueue) {
	if s.busy == 0 && !s.inRing {
		delete(a.sources, s.addr)
	}
}

// close wakes every worker; they finish what is queued and then stop.
func (a *admission) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.wake.Broadcast()
}
