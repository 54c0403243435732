package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"

	"layeh.com/radius"
	"layeh.com/radius/rfc2869"
)

// Message-Authenticator (RFC 3579 §3.2): HMAC-MD5 over the whole packet,
// keyed with the shared secret, with the attribute's own value zeroed. In an
// Access-Request it is the only thing that proves the packet came from a
// holder of the secret; without it an on-path attacker can forge responses
// (BlastRADIUS, CVE-2024-3596).

var (
	errMANone     = errors.New("no Message-Authenticator")
	errMAMultiple = errors.New("more than one Message-Authenticator")
	errMALength   = errors.New("Message-Authenticator of the wrong length")
	errMAMismatch = errors.New("Message-Authenticator does not match (wrong shared secret or altered packet)")
)

// maOffset returns the offset of the Message-Authenticator value in the
// encoded packet b (already length-checked by radius.Parse), or an error.
func maOffset(b []byte) (int, error) {
	length := int(binary.BigEndian.Uint16(b[2:4]))
	off := -1
	for i := 20; i+2 <= length; {
		t, l := b[i], int(b[i+1])
		if l < 2 || i+l > length {
			return -1, errors.New("bad attribute length")
		}
		if radius.Type(t) == rfc2869.MessageAuthenticator_Type {
			if off >= 0 {
				return -1, errMAMultiple
			}
			if l != 18 {
				return -1, errMALength
			}
			off = i + 2
		}
		i += l
	}
	if off < 0 {
		return -1, errMANone
	}
	return off, nil
}

// checkRequestMA verifies the Message-Authenticator of a request b (with
// its own Request Authenticator in place, as sent).
func checkRequestMA(b, secret []byte) error {
	off, err := maOffset(b)
	if err != nil {
		return err
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	buf := make([]byte, length)
	copy(buf, b[:length])
	got := make([]byte, md5.Size)
	copy(got, buf[off:off+md5.Size])
	clear(buf[off : off+md5.Size])
	m := hmac.New(md5.New, secret)
	m.Write(buf)
	if !hmac.Equal(m.Sum(nil), got) {
		return errMAMismatch
	}
	return nil
}

// encodeSigned encodes a response to req with a Message-Authenticator as its
// first attribute (where the BlastRADIUS advisory asks servers to put it, so
// clients can check it first) and then the Response Authenticator.
func encodeSigned(resp *radius.Packet, req *radius.Packet) ([]byte, error) {
	resp.Attributes.Del(rfc2869.MessageAuthenticator_Type)
	zero := make(radius.Attribute, md5.Size)
	resp.Attributes = append(radius.Attributes{{Type: rfc2869.MessageAuthenticator_Type, Attribute: zero}}, resp.Attributes...)
	// The MAC covers the packet with the request's authenticator in place.
	resp.Authenticator = req.Authenticator
	b, err := resp.MarshalBinary()
	if err != nil {
		return nil, err
	}
	m := hmac.New(md5.New, resp.Secret)
	m.Write(b)
	copy(resp.Attributes[0].Attribute, m.Sum(nil))
	return resp.Encode()
}
