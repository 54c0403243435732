package ldapmsg

import (
	"bufio"
	"errors"
	"io"
)

// MaxDepth bounds how deeply a message may nest; LDAP filters are the only
// deep structure, and real ones stay far below this.
const MaxDepth = 100

// ProtocolError is a message the door cannot accept as LDAP. The
// connection is ended with a Notice of Disconnection (RFC 4511 §4.1.1).
// Reason is a fixed, safe text: it goes on the wire.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "ldap protocol error: " + e.Reason }

func protoErr(why string) error { return &ProtocolError{Reason: why} }

// maxKeptFrame is the largest read buffer ReadFrame's caller should keep
// between messages: almost every request is far smaller, and a connection
// that once sent a big one must not hold its buffer for hours.
const maxKeptFrame = 4 << 10

// ReadFrame reads one whole LDAPMessage (a definite-length SEQUENCE) of at
// most limit bytes into buf (reused; pass nil for a new one), refusing a
// larger one from its header, before buffering any of it. End of input
// before a message starts is io.EOF; inside one, io.ErrUnexpectedEOF.
//
// The returned slice aliases buf; Decode copies what it keeps, so the
// caller may reuse the buffer once Decode returns.
func ReadFrame(r *bufio.Reader, limit int, buf []byte) ([]byte, error) {
	hdr, err := r.Peek(2)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if hdr[0] != 0x30 {
		return nil, protoErr("not an LDAP message")
	}
	n, hl := int(hdr[1]), 2
	switch {
	case n == 0x80:
		return nil, protoErr("indefinite length")
	case n > 0x80:
		k := n & 0x7f
		if k > 4 {
			return nil, protoErr("message too large")
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
	if n < 0 || n > limit-hl {
		return nil, protoErr("message too large")
	}
	if cap(buf) < hl+n {
		buf = make([]byte, hl+n, max(hl+n, 512))
	}
	frame := buf[:hl+n]
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, unexpected(err)
	}
	return frame, nil
}

// KeepBuffer says whether a frame buffer is small enough to keep for the
// connection's next message.
func KeepBuffer(b []byte) bool { return cap(b) <= maxKeptFrame }

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkBER walks the element tree of a frame without decoding it, so that
// no element can claim more bytes than its parent holds (which would make
// a decoder allocate its claimed length) and nesting stays within
// maxDepth. Indefinite lengths, which LDAP forbids (RFC 4511 §5.1), are
// refused.
func checkBER(b []byte, maxDepth int) error {
	ends := make([]int, 1, 16)
	ends[0] = len(b)
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
					return protoErr("bad tag")
				}
				c := b[pos]
				pos++
				if c&0x80 == 0 {
					break
				}
			}
		}
		if pos >= end {
			return protoErr("truncated element")
		}
		l := int(b[pos])
		pos++
		switch {
		case l == 0x80:
			return protoErr("indefinite length")
		case l > 0x80:
			k := l & 0x7f
			if k > 4 || k > end-pos {
				return protoErr("bad length")
			}
			l = 0
			for _, c := range b[pos : pos+k] {
				l = l<<8 | int(c)
			}
			pos += k
		}
		if l < 0 || l > end-pos {
			return protoErr("element longer than its container")
		}
		if tag&0x20 != 0 {
			if len(ends) > maxDepth {
				return protoErr("message nested too deep")
			}
			ends = append(ends, pos+l)
		} else {
			pos += l
		}
	}
	return nil
}
