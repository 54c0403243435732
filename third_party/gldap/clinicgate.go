// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

// This file holds clinicgate's additions to gldap v0.1.14 (see PATCHES.md):
// serving a caller's listener, bounded message reading, the peer's address
// and TLS state for handlers, and answers instead of dropped connections for
// requests gldap did not decode (SASL binds, compare, modify DN, abandon).

package gldap

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Defaults for the limits below.
const (
	DefaultMaxMessageSize = 256 << 10
	DefaultMaxInFlight    = 8
	// MaxBERDepth bounds how deeply a message may nest; LDAP filters are
	// the only deep structure, and real ones stay far below this.
	MaxBERDepth = 100
)

// ProtocolError is a message the server could not accept as LDAP. The
// connection is ended with a Notice of Disconnection (RFC 4511 §4.1.1).
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "ldap protocol error: " + e.Reason }

// WithMaxMessageSize bounds one LDAP message, in bytes (default 256 KiB).
// A larger one ends the connection before any of it is buffered.
func WithMaxMessageSize(n int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withMaxMessageSize = n
		}
	}
}

// WithMaxInFlight bounds how many requests of one connection are handled
// at once (default 8); reading pauses until one finishes.
func WithMaxInFlight(n int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withMaxInFlight = n
		}
	}
}

// Serve accepts connections on l until Stop. l may be a TLS listener
// (LDAPS). Temporary accept errors (such as running out of file
// descriptors under a flood) pause accepting instead of stopping.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.listener = l
	s.listenerReady = true
	s.mu.Unlock()
	s.logger.Info("listening", "addr", l.Addr())
	connID := 0
	var backoff time.Duration
	for {
		select {
		case <-s.shutdownCtx.Done():
			return nil
		default:
		}
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.shutdownCtx.Done():
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger.Warn("accept failed; pausing", "err", err.Error(), "pause", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("gldap.(Server).Serve: %w", err)
		}
		backoff = 0
		connID++
		s.serveConn(connID, c)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// readFrame reads one whole LDAPMessage (a definite-length SEQUENCE) of at
// most max bytes, refusing larger ones before buffering them.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	hdr, err := r.Peek(2)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if hdr[0] != 0x30 {
		return nil, &ProtocolError{Reason: "not an LDAP message"}
	}
	n, hl := int(hdr[1]), 2
	switch {
	case n == 0x80:
		return nil, &ProtocolError{Reason: "indefinite length"}
	case n > 0x80:
		k := n & 0x7f
		if k > 4 {
			return nil, &ProtocolError{Reason: "message too large"}
		}
		b, err := r.Peek(2 + k)
		if err != nil {
			return nil, unexpected(err)
		}
		n = 0
		for _, c := range b[2:] {
			n = n<<8 | int(c)
		}
		hl = 2 + k
	}
	if n < 0 || n > max-hl {
		return nil, &ProtocolError{Reason: "message too large"}
	}
	frame := make([]byte, hl+n)
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, unexpected(err)
	}
	return frame, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkBER walks the element tree of a frame without decoding it, so that
// no element can claim more bytes than its parent holds (which would make
// the decoder allocate its claimed length) and nesting stays bounded.
func checkBER(b []byte, maxDepth int) error {
	bad := func(why string) error { return &ProtocolError{Reason: why} }
	ends := []int{len(b)}
	pos := 0
	for len(ends) > 0 {
		end := ends[len(ends)-1]
		if pos == end {
			ends = ends[:len(ends)-1]
			continue
		}
		tag := b[pos]
		pos++
		if tag&0x1f == 0x1f {
			for i := 0; ; i++ {
				if pos >= end || i == 4 {
					return bad("bad tag")
				}
				c := b[pos]
				pos++
				if c&0x80 == 0 {
					break
				}
			}
		}
		if pos >= end {
			return bad("truncated element")
		}
		l := int(b[pos])
		pos++
		switch {
		case l == 0x80:
			return bad("indefinite length")
		case l > 0x80:
			k := l & 0x7f
			if k > 4 || k > end-pos {
				return bad("bad length")
			}
			l = 0
			for _, c := range b[pos : pos+k] {
				l = l<<8 | int(c)
			}
			pos += k
		}
		if l < 0 || l > end-pos {
			return bad("element longer than its container")
		}
		if tag&0x20 != 0 {
			if len(ends) > maxDepth {
				return bad("message nested too deep")
			}
			ends = append(ends, pos+l)
		} else {
			pos += l
		}
	}
	return nil
}

func decodeFrame(frame []byte) (*ber.Packet, error) {
	if err := checkBER(frame, MaxBERDepth); err != nil {
		return nil, err
	}
	p, err := ber.DecodePacketErr(frame)
	if err != nil {
		return nil, &ProtocolError{Reason: "undecodable message"}
	}
	return p, nil
}

// RemoteAddr is the address of the client that sent the request.
func (r *Request) RemoteAddr() net.Addr {
	return r.conn.current().RemoteAddr()
}

// TLS reports whether the request arrived over TLS (LDAPS, or after
// StartTLS).
func (r *Request) TLS() bool {
	_, ok := r.conn.current().(*tls.Conn)
	return ok
}

// ProtocolOp is the request's LDAP application tag (ApplicationBindRequest,
// ApplicationCompareRequest, ...), for answering operations gldap does not
// route with a response of the right type.
func (r *Request) ProtocolOp() int { return r.protocolOp }

// SASLMechanism is the mechanism of a SASL bind, "" for a simple bind.
func (m *SimpleBindMessage) SASLMechanism() string { return m.saslMechanism }

// UnsupportedMessage is a request gldap decodes no further (compare,
// modify DN); it reaches the default route.
type UnsupportedMessage struct {
	baseMessage
}

// abandonRouteOperation requests get no response (RFC 4511 §4.11).
const (
	abandonRouteOperation     routeOperation = "abandon"
	unsupportedRouteOperation routeOperation = "unsupported"
)
