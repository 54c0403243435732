package radius

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/clinicgate/clinicgate/appliance"
)

// hashingDecider stands in for a gate whose every decision hashes a
// password on one CPU: a decision holds the one slot for a moment.
type hashingDecider struct {
	fakeDecider
	cpu     chan struct{}
	flooded atomic.Int64 // flood decisions finished
	// done ends the cost once the test has its answer, so that draining
	// the rest of the flood at Shutdown takes no time.
	done atomic.Bool
}

func (h *hashingDecider) Decide(ctx context.Context, req appliance.Request) (appliance.Decision, error) {
	if !h.done.Load() {
		h.cpu <- struct{}{}
		time.Sleep(2 * time.Millisecond)
		<-h.cpu
	}
	if req.NAS == "flood" {
		h.flooded.Add(1)
	}
	return h.fakeDecider.Decide(ctx, req)
}

// TestFloodFromOneNASDoesNotStarveAnother (issue 16 finding 8): one NAS
// sends a flood of costly requests, more than the old queue held; a login
// from another NAS meanwhile is still decided and answered, long before
// the flood is worked off.
func TestFloodFromOneNASDoesNotStarveAnother(t *testing.T) {
	const flood = 2000 // far more than the old queue of 256 and 32 workers held
	f := newFixture(t)
	f.clients.clients = []appliance.Client{testClient("ward", "127.0.0.0/8")}
	gate := &hashingDecider{cpu: make(chan struct{}, 1)}
	gate.decision = appliance.Decision{Outcome: appliance.Reject, Reason: appliance.ReasonUnknownUser, Message: appliance.MsgDenied}
	f.s.Gate = gate
	addr, done := listen(t, f.s.Serve)
	t.Cleanup(func() {
		f.s.Shutdown(context.Background())
		<-done
	})

	flooder := nas(t, addr)
	for i := range flood {
		p := accessRequest(t, "nobody"+string(rune('a'+i%26)), "guess")
		p.Identifier = byte(i)
		rfc2865.NASIdentifier_SetString(p, "flood")
		if _, err := flooder.Write(signed(t, p, testSecret)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the flood to be worked on", func() bool { return gate.flooded.Load() > 0 })

	other, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	p := accessRequest(t, "alice", "correct horse")
	rfc2865.NASIdentifier_SetString(p, "front-desk")
	req := signed(t, p, testSecret)
	if _, err := other.Write(req); err != nil {
		t.Fatal(err)
	}
	reply := read(t, other)
	left := flood - gate.flooded.Load()
	gate.done.Store(true)
	mustReply(t, reply, req, radius.CodeAccessReject)
	if left < flood/2 {
		t.Errorf("the other NAS was answered only after %d of the flood's %d requests, want it answered while most still wait", flood-left, flood)
	}
	if n := f.dropped("overload"); n != 0 {
		t.Errorf("got %v requests dropped at the queue, want none: %d cheap slots per source", n, f.s.Queue/2)
	}
}

func TestAdmissionBounds(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	pkt := func(n int) job { return job{buf: make([]byte, n)} }

	t.Run("packets, per source and bytes", func(t *testing.T) {
		a := newAdmission(4, 1000, 3, 1, 0, func() time.Time { return now })
		for i := range 3 {
			if !a.push(a1, pkt(10)) {
				t.Fatalf("push %d from one source refused, want queued (3 per source)", i)
			}
		}
		if a.push(a1, pkt(10)) {
			t.Error("a fourth packet from one source was queued, want refused (3 per source)")
		}
		if !a.push(a2, pkt(10)) {
			t.Error("another source's packet was refused while the queue had room")
		}
		if a.push(netip.MustParseAddr("192.0.2.3"), pkt(10)) {
			t.Error("a fifth packet was queued, want refused (4 in all)")
		}
		b := newAdmission(10, 100, 10, 1, 0, func() time.Time { return now })
		if !b.push(a1, pkt(60)) || b.push(a2, pkt(60)) {
			t.Error("got a queue over its byte bound, want the second packet refused")
		}
	})

	t.Run("sources take turns", func(t *testing.T) {
		a := newAdmission(100, 1<<20, 100, 100, 0, func() time.Time { return now })
		for range 5 {
			a.push(a1, pkt(1))
		}
		a.push(a2, pkt(2))
		_, s1, _, _ := a.pop()
		j, s2, _, _ := a.pop()
		if s1.addr != a1 || s2.addr != a2 || len(j.buf) != 2 {
			t.Fatalf("got %v then %v, want the flooding source then the other one", s1.addr, s2.addr)
		}
		a.done(s1)
		a.done(s2)
	})

	t.Run("a busy source yields its turn", func(t *testing.T) {
		a := newAdmission(100, 1<<20, 100, 1, 0, func() time.Time { return now })
		for range 3 {
			a.push(a1, pkt(1))
		}
		_, s1, _, _ := a.pop() // a1 now has its one worker
		a.push(a2, pkt(1))
		if _, s, _, _ := a.pop(); s.addr != a2 {
			t.Fatalf("got %v, want %v: %v is at its share of the workers", s.addr, a2, a1)
		}
		// Alone, a busy source still gets every free worker.
		if _, s, _, _ := a.pop(); s.addr != a1 {
			t.Fatalf("got %v, want %v", s.addr, a1)
		}
		a.done(s1)
	})

	t.Run("stale packets are dropped", func(t *testing.T) {
		clock := now
		a := newAdmission(100, 1<<20, 100, 100, 5*time.Second, func() time.Time { return clock })
		a.push(a1, pkt(1))
		clock = clock.Add(6 * time.Second)
		a.push(a1, pkt(2))
		j, s, stale, ok := a.pop()
		if !ok || len(stale) != 1 || len(j.buf) != 2 {
			t.Fatalf("got %d stale and a packet of %d bytes, want 1 stale and the fresh one", len(stale), len(j.buf))
		}
		a.done(s)
		if len(a.sources) != 0 {
			t.Errorf("got %d sources remembered with nothing waiting, want 0", len(a.sources))
		}
	})
}
