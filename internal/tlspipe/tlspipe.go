// Package tlspipe is the net.Conn that crypto/tls runs over when its
// records travel in another protocol's messages (EAP-TLS, EAP-TTLS, PEAP),
// for the EAP server and the EAP client alike. crypto/tls wants a
// connection it can block on; here one goroutine runs TLS on a Conn, and
// the protocol's code feeds it the peer's records (In), learns when TLS
// waits for more (Idle), and takes what TLS wrote (TakeOut).
//
// It holds no protocol of its own and never blocks its caller for ever:
// every wait also ends when the Conn is closed.
package tlspipe

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"time"
)

// ErrTooMuch is the error of a Write past the Conn's output cap.
var ErrTooMuch = errors.New("tlspipe: TLS output above the cap")

// Conn is one side's pipe. Read tells Idle that TLS waits (once it has
// taken all that was fed, and, unless the Conn was made with idleFirst,
// only after a first feed), then takes the next feed; an empty feed (the
// peer had nothing for TLS, an ACK) is waited past. Write collects TLS's
// output, under mu: the TLS goroutine writes while it runs and the
// caller takes after Idle or after the goroutine ended, which orders them.
type Conn struct {
	in      chan []byte
	idle    chan struct{}
	closed  chan struct{}
	once    sync.Once
	pending []byte
	fed     bool
	max     int
	mu      sync.Mutex
	out     bytes.Buffer
}

// New makes a Conn whose output is capped at max bytes between takes.
// idleFirst says TLS speaks first on it (a client: its first Read says
// idle so the ClientHello is taken before anything is fed); a server is
// fed the peer's first flight before it reads.
func New(max int, idleFirst bool) *Conn {
	return &Conn{in: make(chan []byte), idle: make(chan struct{}), closed: make(chan struct{}), max: max, fed: idleFirst}
}

// In is where the peer's records are fed, one message at a time.
func (p *Conn) In() chan<- []byte { return p.in }

// Idle receives when TLS has taken every fed byte and waits for more.
func (p *Conn) Idle() <-chan struct{} { return p.idle }

// Closed is closed with the Conn.
func (p *Conn) Closed() <-chan struct{} { return p.closed }

func (p *Conn) Read(b []byte) (int, error) {
	for len(p.pending) == 0 {
		if p.fed {
			select {
			case p.idle <- struct{}{}:
			case <-p.closed:
				return 0, net.ErrClosed
			}
		}
		select {
		case p.pending = <-p.in:
			p.fed = true
		case <-p.closed:
			return 0, net.ErrClosed
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func (p *Conn) Write(b []byte) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Len()+len(b) > p.max {
		return 0, ErrTooMuch
	}
	return p.out.Write(b)
}

// TakeOut returns and forgets what TLS wrote so far.
func (p *Conn) TakeOut() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := bytes.Clone(p.out.Bytes())
	p.out.Reset()
	return b
}

// Close ends every wait on the Conn, TLS's and the caller's (safe to call
// more than once).
func (p *Conn) Close() error { p.once.Do(func() { close(p.closed) }); return nil }

func (p *Conn) LocalAddr() net.Addr              { return addr{} }
func (p *Conn) RemoteAddr() net.Addr             { return addr{} }
func (p *Conn) SetDeadline(time.Time) error      { return nil }
func (p *Conn) SetReadDeadline(time.Time) error  { return nil }
func (p *Conn) SetWriteDeadline(time.Time) error { return nil }

type addr struct{}

func (addr) Network() string { return "eap" }
func (addr) String() string  { return "eap" }
