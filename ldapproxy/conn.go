package ldapproxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/ldapproxy/ldapmsg"
)

// maxKeptWrite is the largest response buffer a connection keeps between
// responses; a big search entry must not pin its buffer for hours.
const maxKeptWrite = 16 << 10

// conn is one client connection: its read loop, its authentication and
// what its handlers write through.
type conn struct {
	s   *Server
	h   *handler
	raw net.Conn // as accepted; deadlines set here reach the TLS layer too
	src netip.Addr
	br  *bufio.Reader

	// nc is what requests are read from and responses written to: raw,
	// or the TLS connection after StartTLS. It changes only while no
	// handler runs (see startTLS), and is written under wmu.
	nc    net.Conn
	tls   bool
	wmu   sync.Mutex
	wbuf  []byte
	state connState

	inFlight chan struct{}
	handlers sync.WaitGroup

	// stopMu orders Shutdown's stop against the loop renewing its read
	// deadline, so that an idle read always ends at shutdown.
	stopMu   sync.Mutex
	stopping bool

	// authBy is when the connection must have bound successfully
	// (Config.AuthTimeout after accept); until then no read waits past it.
	// authed is set by the first successful bind, and stays: a later
	// failed bind (an EHR checking a user's password) does not bring the
	// deadline back.
	authBy time.Time
	authed atomic.Bool
}

func newConn(s *Server, h *handler, nc net.Conn) *conn {
	_, isTLS := nc.(*tls.Conn)
	return &conn{
		s: s, h: h, raw: nc, nc: nc, tls: isTLS, src: sourceOf(nc.RemoteAddr()),
		br: bufio.NewReader(nc), inFlight: make(chan struct{}, s.cfg.MaxInFlight),
		authBy: time.Now().Add(s.cfg.AuthTimeout),
	}
}

// stop ends the connection's wait for its next request (Shutdown).
func (c *conn) stop() {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	c.stopping = true
	_ = c.raw.SetReadDeadline(time.Now())
}

// awaitNext renews the idle timeout before a request is read, unless
// the server is stopping.
func (c *conn) awaitNext() bool {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.stopping {
		return false
	}
	_ = c.raw.SetReadDeadline(c.deadline())
	return true
}

// deadline is the idle timeout from now, cut short by the authentication
// deadline while the connection has not bound: a connection that opens
// and sends nothing, or never finishes its TLS handshake, or never binds,
// is closed within seconds, not at the idle timeout (issue 16).
func (c *conn) deadline() time.Time {
	d := time.Now().Add(c.s.cfg.IdleTimeout)
	if !c.authed.Load() && c.authBy.Before(d) {
		return c.authBy
	}
	return d
}

// bound records the connection's first successful bind and lifts the
// authentication deadline from the read the loop is waiting in.
func (c *conn) bound() {
	if c.authed.Swap(true) {
		return
	}
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if !c.stopping {
		_ = c.raw.SetReadDeadline(c.deadline())
	}
}

func (c *conn) isStopping() bool {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	return c.stopping
}

// serve reads requests until the client leaves, goes idle, sends
// something that is not LDAP, or the server shuts down. Requests run
// concurrently, at most MaxInFlight at once; reading pauses meanwhile.
func (c *conn) serve() {
	defer func() {
		c.handlers.Wait()
		_ = c.nc.Close()
	}()
	var buf []byte
	for {
		if !c.awaitNext() {
			c.handlers.Wait()
			c.notice(ldap.LDAPResultUnavailable, "The server is shutting down.")
			return
		}
		frame, err := ldapmsg.ReadFrame(c.br, c.s.cfg.MaxMessageSize, buf)
		var r *ldapmsg.Request
		if err == nil {
			r, err = ldapmsg.Decode(frame)
			if ldapmsg.KeepBuffer(frame) {
				buf = frame
			}
		}
		if err != nil {
			var pe *ldapmsg.ProtocolError
			switch {
			case errors.As(err, &pe):
				// RFC 4511 §4.1.1: a server that cannot read a
				// message says so, then ends the connection.
				c.handlers.Wait()
				c.s.cfg.Metrics.op("message", "protocol_error")
				c.notice(ldap.LDAPResultProtocolError, pe.Reason)
			case c.isStopping():
				c.handlers.Wait()
				c.notice(ldap.LDAPResultUnavailable, "The server is shutting down.")
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
			default:
				// Idle timeout or a broken connection: nothing to say.
			}
			return
		}
		switch {
		case r.Op == ldap.ApplicationUnbindRequest:
			return
		case r.Op == ldap.ApplicationAbandonRequest:
			// Handlers cannot be cancelled; RFC 4511 §4.11 lets a
			// server ignore an abandon, which never gets a response.
			continue
		case r.Op == ldap.ApplicationExtendedRequest && r.Extended.Name == ldapmsg.OIDStartTLS:
			// RFC 4511 §4.14.1: TLS starts after the response, and
			// nothing else may be read or written meanwhile.
			c.handlers.Wait()
			if c.h.startTLS(c, r) != nil {
				return
			}
			continue
		}
		c.inFlight <- struct{}{}
		c.handlers.Add(1)
		go c.handle(r)
	}
}

func (c *conn) handle(r *ldapmsg.Request) {
	defer func() {
		if p := recover(); p != nil {
			// A bug in one request must not take the daemon down; the
			// connection is ended so the client does not wait forever.
			c.s.log.Error("LDAP request handler panicked; connection closed", "source", c.src.String(), "panic", p)
			_ = c.raw.Close()
		}
		<-c.inFlight
		c.handlers.Done()
	}()
	c.h.serve(c, r)
}

// notice sends a Notice of Disconnection (RFC 4511 §4.4.1) before the
// connection ends.
func (c *conn) notice(code int, diag string) {
	_ = c.write(func(b []byte) []byte { return ldapmsg.AppendNotice(b, code, diag) })
}

// write sends one encoded message under the write timeout. Handlers of
// one connection write concurrently; messages never interleave.
func (c *conn) write(encode func([]byte) []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := encode(c.wbuf[:0])
	if cap(b) <= maxKeptWrite {
		c.wbuf = b
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(b)
	return err
}

func (c *conn) writeResult(id int64, op int, res *ldapmsg.Result) error {
	return c.write(func(b []byte) []byte { return ldapmsg.AppendResult(b, id, op, *res) })
}

func (c *conn) writeExtended(id int64, res *ldapmsg.ExtendedResponse) error {
	return c.write(func(b []byte) []byte { return ldapmsg.AppendExtendedResponse(b, id, *res) })
}

func (c *conn) writeEntry(id int64, dn string, attrs []ldapmsg.Attribute) error {
	return c.write(func(b []byte) []byte { return ldapmsg.AppendSearchEntry(b, id, dn, attrs) })
}

// upgradeTLS runs the server side of a TLS handshake on the connection
// (StartTLS); afterwards requests are read and responses written over
// TLS. Only the read loop calls it, with no handler running.
func (c *conn) upgradeTLS(cfg *tls.Config) error {
	under := c.nc
	if n := c.br.Buffered(); n > 0 {
		// The client sent its handshake before reading our response:
		// those bytes are in the read buffer, not on the socket.
		pending, _ := c.br.Peek(n)
		under = &prefixConn{Conn: c.nc, pending: append([]byte(nil), pending...)}
	}
	tc := tls.Server(under, cfg)
	_ = c.raw.SetDeadline(c.deadline())
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.wmu.Lock()
	c.nc, c.tls = tc, true
	c.wmu.Unlock()
	c.br.Reset(tc)
	return nil
}

// prefixConn reads pending before the connection itself.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
