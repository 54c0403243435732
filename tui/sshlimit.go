package tui

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits on SSH connections that have not authenticated yet (issue 16,
// finding 4: 1,100 connections that never sent a byte were kept until the
// 15-minute idle timeout and used up the daemon's file descriptors).
const (
	// PreAuthTimeout is how long a connection has to authenticate.
	PreAuthTimeout = 10 * time.Second
	// MaxPreAuth and MaxPreAuthPerSource bound the connections still
	// authenticating, in all and from one address; more are closed at
	// accept.
	MaxPreAuth          = 64
	MaxPreAuthPerSource = 8
)

// preAuth tracks connections until their key is accepted.
type preAuth struct {
	mu      sync.Mutex
	total   int
	perSrc  map[netip.Addr]int
	pending map[string]*pending // by remote address
	timeout time.Duration
	max     int
	maxSrc  int
}

type pending struct {
	src   netip.Addr
	timer *time.Timer
	done  bool
}

func newPreAuth() *preAuth {
	return &preAuth{perSrc: map[netip.Addr]int{}, pending: map[string]*pending{}, timeout: PreAuthTimeout, max: MaxPreAuth, maxSrc: MaxPreAuthPerSource}
}

// admit counts c as authenticating, or refuses it (false) over a limit.
// A connection that has not authenticated when the timeout fires is
// closed.
func (p *preAuth) admit(c net.Conn) bool {
	src := addrOf(c.RemoteAddr())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total >= p.max || p.perSrc[src] >= p.maxSrc {
		return false
	}
	key := c.RemoteAddr().String()
	pe := &pending{src: src}
	pe.timer = time.AfterFunc(p.timeout, func() {
		if p.finish(key) {
			_ = c.Close()
		}
	})
	p.pending[key] = pe
	p.total++
	p.perSrc[src]++
	return true
}

// authenticated is called when the connection from remote proved its key
// and opened a session, or closed: it no longer counts, and its timer is
// stopped.
func (p *preAuth) authenticated(remote net.Addr) {
	key := remote.String()
	p.mu.Lock()
	pe := p.pending[key]
	p.mu.Unlock()
	if pe != nil && pe.timer.Stop() {
		p.finish(key)
	}
}

// finish stops counting a connection; it reports whether it was still
// counted (so that only one of the timer and the authentication acts).
func (p *preAuth) finish(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe := p.pending[key]
	if pe == nil || pe.done {
		return false
	}
	pe.done = true
	delete(p.pending, key)
	p.total--
	if p.perSrc[pe.src]--; p.perSrc[pe.src] <= 0 {
		delete(p.perSrc, pe.src)
	}
	return true
}

func addrOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedListener admits connections through preAuth and closes the
// ones over its limits at once.
type limitedListener struct {
	net.Listener
	p *preAuth
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.p.admit(c) {
			return &trackedConn{Conn: c, p: l.p}, nil
		}
		_ = c.Close()
	}
}

// trackedConn tells preAuth when it closes.
type trackedConn struct {
	net.Conn
	p    *preAuth
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.p.authenticated(c.RemoteAddr()) })
	return c.Conn.Close()
}
