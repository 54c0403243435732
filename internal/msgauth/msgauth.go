// Package msgauth is RADIUS's Message-Authenticator (RFC 3579 §3.2) in one
// place: HMAC-MD5 over the whole packet, keyed with the shared secret, with
// the attribute's own value zeroed; in a response, computed with the
// request's authenticator in place of the response's. In an Access-Request
// it is the only thing that proves the packet came from a holder of the
// secret; without it an on-path attacker can forge responses (BlastRADIUS,
// CVE-2024-3596).
//
// It signs and verifies, and nothing else: it holds no policy (whether a
// missing Message-Authenticator is acceptable is the caller's decision, from
// ErrMissing) and imports only the standard library and layeh.com/radius.
package msgauth

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// Size is the length of a Message-Authenticator's value.
const Size = md5.Size

var (
	ErrMissing   = errors.New("no Message-Authenticator")
	ErrMultiple  = errors.New("more than one Message-Authenticator")
	ErrLength    = errors.New("Message-Authenticator of the wrong length")
	ErrMismatch  = errors.New("Message-Authenticator does not match (wrong shared secret or altered packet)")
	ErrMalformed = errors.New("malformed packet (bad length or attribute length)")
)

// Sum is HMAC-MD5(secret, b): b is the packet exactly as the MAC covers it
// (Message-Authenticator values zeroed; for a response, the request's
// authenticator in place).
func Sum(secret, b []byte) []byte {
	m := hmac.New(md5.New, secret)
	m.Write(b)
	return m.Sum(nil)
}

// Find returns the offset of the one Message-Authenticator value in the
// encoded packet b, or ErrMissing, ErrMultiple, ErrLength or ErrMalformed.
func Find(b []byte) (int, error) {
	length, err := packetLength(b)
	if err != nil {
		return -1, err
	}
	off := -1
	for i := 20; i+2 <= length; {
		t, l := b[i], int(b[i+1])
		if l < 2 || i+l > length {
			return -1, ErrMalformed
		}
		if radius.Type(t) == rfc2869.MessageAuthenticator_Type {
			if off >= 0 {
				return -1, ErrMultiple
			}
			if l != 2+Size {
				return -1, ErrLength
			}
			off = i + 2
		}
		i += l
	}
	if off < 0 {
		return -1, ErrMissing
	}
	return off, nil
}

// packetLength is the Length field of b, checked against b.
func packetLength(b []byte) (int, error) {
	if len(b) < 20 {
		return 0, ErrMalformed
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > len(b) {
		return 0, ErrMalformed
	}
	return length, nil
}

// Sign fills in the Message-Authenticator of the encoded request b (which
// must already carry one, of any value), keyed with secret. b is a request
// as sent: its own Request Authenticator in place.
func Sign(b, secret []byte) error {
	off, err := Find(b)
	if err != nil {
		return err
	}
	length, _ := packetLength(b)
	clear(b[off : off+Size])
	copy(b[off:off+Size], Sum(secret, b[:length]))
	return nil
}

// SignRequest adds a Message-Authenticator to the request p (an
// Access-Request or Status-Server, whose Request Authenticator Encode
// keeps as it is) and sets its value, so that p.Encode() is signed with
// p.Secret. An existing one is replaced.
func SignRequest(p *radius.Packet) error {
	p.Attributes.Del(rfc2869.MessageAuthenticator_Type)
	p.Add(rfc2869.MessageAuthenticator_Type, make([]byte, Size))
	b, err := p.Encode()
	if err != nil {
		return err
	}
	if err := Sign(b, p.Secret); err != nil {
		return err
	}
	off, _ := Find(b)
	p.Attributes.Set(rfc2869.MessageAuthenticator_Type, radius.Attribute(append([]byte(nil), b[off:off+Size]...)))
	return nil
}

// Verify checks the Message-Authenticator of the encoded request b (its
// own Request Authenticator in place, as sent), in constant time.
func Verify(b, secret []byte) error {
	return verify(b, nil, secret)
}

// VerifyResponse checks the Message-Authenticator of the encoded response
// b to a request whose authenticator is reqAuth, in constant time. It does
// not check the Response Authenticator (radius.IsAuthenticResponse does).
func VerifyResponse(b, reqAuth, secret []byte) error {
	if len(reqAuth) != 16 {
		return ErrMalformed
	}
	return verify(b, reqAuth, secret)
}

func verify(b, reqAuth, secret []byte) error {
	off, err := Find(b)
	if err != nil {
		return err
	}
	length, _ := packetLength(b)
	buf := make([]byte, length)
	copy(buf, b[:length])
	if reqAuth != nil {
		copy(buf[4:20], reqAuth)
	}
	clear(buf[off : off+Size])
	if !hmac.Equal(Sum(secret, buf), b[off:off+Size]) {
		return ErrMismatch
	}
	return nil
}

// SignResponse encodes resp, the response to req, with a
// Message-Authenticator as its first attribute (where the BlastRADIUS
// advisory asks servers to put it, so clients can check it first), then
// its Response Authenticator. An existing Message-Authenticator in resp is
// replaced.
func SignResponse(resp, req *radius.Packet) ([]byte, error) {
	resp.Attributes.Del(rfc2869.MessageAuthenticator_Type)
	zero := make(radius.Attribute, Size)
	resp.Attributes = append(radius.Attributes{{Type: rfc2869.MessageAuthenticator_Type, Attribute: zero}}, resp.Attributes...)
	// The MAC covers the packet with the request's authenticator in place.
	resp.Authenticator = req.Authenticator
	b, err := resp.MarshalBinary()
	if err != nil {
		return nil, err
	}
	copy(resp.Attributes[0].Attribute, Sum(resp.Secret, b))
	return resp.Encode()
}
