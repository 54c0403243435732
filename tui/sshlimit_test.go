package tui

import (
	"net"
	"testing"
	"time"
)

// TestPreAuthLimits: connections that never authenticate are closed at
// the timeout, and no more than the limits wait at once, in all and from
// one address (issue 16, finding 4).
func TestPreAuthLimits(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := newPreAuth()
	p.timeout, p.max, p.maxSrc = 300*time.Millisecond, 5, 3
	ll := &limitedListener{Listener: l, p: p}
	accepted := make(chan net.Conn, 20)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(ip byte) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range 4 {
		dial(1)
	}
	for range 3 {
		dial(2)
	}
	var got []net.Conn
	for len(got) < 5 {
		select {
		case c := <-accepted:
			got = append(got, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("%d connections admitted, want 5", len(got))
		}
	}
	select {
	case c := <-accepted:
		t.Fatalf("a sixth connection from %v was admitted past the limits", c.RemoteAddr())
	case <-time.After(200 * time.Millisecond):
	}
	src := map[string]int{}
	for _, c := range got {
		src[addrOf(c.RemoteAddr()).String()]++
	}
	if src["127.0.0.1"] != 3 {
		t.Fatalf("admitted per source %v, want 3 from 127.0.0.1 (its limit)", src)
	}
	// One authenticates in time; the others are closed at the timeout.
	p.authenticated(got[0].RemoteAddr())
	time.Sleep(600 * time.Millisecond)
	if _, err := got[0].Write([]byte("x")); err != nil {
		t.Fatalf("the authenticated connection was closed: %v", err)
	}
	for _, c := range got[1:] {
		if _, err := c.Write([]byte("x")); err == nil {
			t.Fatalf("a connection from %v that never authenticated is still open", c.RemoteAddr())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total != 0 || len(p.perSrc) != 0 {
		t.Fatalf("counts left: total %d, per source %v", p.total, p.perSrc)
	}
}
