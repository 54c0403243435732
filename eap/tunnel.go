package eap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// tunnel runs one TLS server over records carried in EAP. crypto/tls wants
// a net.Conn it can block on, so each session has one goroutine, blocked on
// pipeConn.Read while it waits for the peer's next EAP message; step feeds
// the records received and returns the records to send once the goroutine
// waits again (or has finished). close ends the goroutine: a session that
// expires or is evicted frees it.
type tunnel struct {
	pc   *pipeConn
	done chan tunnelResult // buffered: the goroutine never blocks on it
	res  *tunnelResult     // once done
}

// tunnelResult is what the goroutine ends with: the tunnel's keys and the
// inner credentials, or why it failed.
type tunnelResult struct {
	err     error
	version uint16
	msk     []byte
	inner   innerPAP
}

// Keying labels: RFC 5281 §8 (TLS 1.2) and RFC 9427 (TLS 1.3, with the
// method's type as the context).
const (
	labelTTLS12 = "ttls keying material"
	labelTLS13  = "EXPORTER_EAP_TLS_Key_Material"
)

func startTunnel(cfg *tls.Config) *tunnel {
	t := &tunnel{pc: newPipeConn(), done: make(chan tunnelResult, 1)}
	go func() { t.done <- t.run(cfg) }()
	return t
}

func (t *tunnel) run(cfg *tls.Config) tunnelResult {
	c := tls.Server(t.pc, cfg)
	defer t.pc.close()
	if err := c.Handshake(); err != nil {
		return tunnelResult{err: err}
	}
	st := c.ConnectionState()
	var msk []byte
	var err error
	switch st.Version {
	case tls.VersionTLS13:
		msk, err = st.ExportKeyingMaterial(labelTLS13, []byte{TypeTTLS}, 128)
	default:
		// RFC 5705 with no context is RFC 5281's PRF(master secret, label,
		// client random + server random). Go gives it only with the
		// Extended Master Secret (RFC 7627), which every current peer
		// offers; without it the handshake is refused below.
		msk, err = st.ExportKeyingMaterial(labelTTLS12, nil, 128)
	}
	if err != nil {
		return tunnelResult{err: err, version: st.Version}
	}
	// The inner AVPs: one TLS record of application data.
	buf := make([]byte, 16<<10)
	n, err := c.Read(buf)
	if err != nil {
		return tunnelResult{err: err, version: st.Version}
	}
	in, err := parseAVPs(buf[:n])
	clear(buf)
	return tunnelResult{err: err, version: st.Version, msk: msk[:64], inner: in}
}

var errTunnelTimeout = errors.New("eap: the TLS tunnel did not answer in time")

// step hands the peer's records to TLS and returns TLS's answer. With a
// result, the goroutine has ended.
func (t *tunnel) step(ctx context.Context, in []byte) ([]byte, *tunnelResult, error) {
	if t.res != nil {
		return nil, t.res, nil
	}
	select {
	case t.pc.in <- in:
	case r := <-t.done:
		t.res = &r
		return t.pc.takeOut(), t.res, nil
	case <-ctx.Done():
		return nil, nil, errTunnelTimeout
	}
	select {
	case <-t.pc.idle:
		return t.pc.takeOut(), nil, nil
	case r := <-t.done:
		t.res = &r
		return t.pc.takeOut(), t.res, nil
	case <-ctx.Done():
		return nil, nil, errTunnelTimeout
	}
}

func (t *tunnel) close() { t.pc.close() }

// pipeConn is the net.Conn the TLS server sees. Read takes what step fed,
// and tells step it waits for more (idle) once it has nothing; Write
// collects what TLS sends. out is only touched by the goroutine while it
// runs and by step after idle or done, which orders the two.
type pipeConn struct {
	in      chan []byte
	idle    chan struct{}
	closed  chan struct{}
	once    sync.Once
	pending []byte
	fed     bool
	mu      sync.Mutex
	out     bytes.Buffer
}

func newPipeConn() *pipeConn {
	return &pipeConn{in: make(chan []byte), idle: make(chan struct{}), closed: make(chan struct{})}
}

func (p *pipeConn) Read(b []byte) (int, error) {
	if len(p.pending) == 0 {
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
		if len(p.pending) == 0 {
			// An empty feed: the peer had nothing for TLS (an ACK). Wait again.
			return 0, nil
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

func (p *pipeConn) Write(b []byte) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Len()+len(b) > maxMessage {
		return 0, errors.New("eap: TLS output above the cap")
	}
	return p.out.Write(b)
}

func (p *pipeConn) takeOut() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := bytes.Clone(p.out.Bytes())
	p.out.Reset()
	return b
}

func (p *pipeConn) close() { p.once.Do(func() { close(p.closed) }) }

func (p *pipeConn) Close() error                     { p.close(); return nil }
func (p *pipeConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (p *pipeConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (p *pipeConn) SetDeadline(time.Time) error      { return nil }
func (p *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeConn) SetWriteDeadline(time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "eap" }
func (pipeAddr) String() string  { return "eap" }
