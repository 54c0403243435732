package eap

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EAP codes (RFC 3748 §4).
const (
	CodeRequest  = 1
	CodeResponse = 2
	CodeSuccess  = 3
	CodeFailure  = 4
)

// EAP method types (RFC 3748 §5, IANA).
const (
	TypeIdentity   = 1
	TypeNAK        = 3
	TypeTLS        = 13 // RFC 5216, RFC 9190
	TypeTTLS       = 21 // RFC 5281
	TypePEAP       = 25 // draft-kamath-pppext-peapv0
	TypeMSCHAPv2   = 26 // draft-kamath-pppext-eap-mschapv2, inside PEAP
	TypeExtensions = 33 // PEAP's TLV packets (MS-PEAP §2.2.8)
)

// Packet is one EAP packet.
type Packet struct {
	Code       byte
	Identifier byte
	Type       byte   // Request and Response only
	Data       []byte // after the type
}

var errLength = errors.New("eap: length field does not match the packet")

// Parse decodes one EAP packet. Its Length must be exactly the bytes
// given: what the RADIUS attributes carried, joined.
func Parse(b []byte) (Packet, error) {
	if len(b) < 4 {
		return Packet{}, fmt.Errorf("eap: %d bytes, shorter than a header", len(b))
	}
	p := Packet{Code: b[0], Identifier: b[1]}
	if n := int(binary.BigEndian.Uint16(b[2:4])); n != len(b) {
		return Packet{}, errLength
	}
	switch p.Code {
	case CodeRequest, CodeResponse:
		if len(b) < 5 {
			return Packet{}, errors.New("eap: a request or response without a type")
		}
		p.Type, p.Data = b[4], b[5:]
	case CodeSuccess, CodeFailure:
		if len(b) != 4 {
			return Packet{}, errors.New("eap: a success or failure with data")
		}
	default:
		return Packet{}, fmt.Errorf("eap: unknown code %d", p.Code)
	}
	return p, nil
}

// Encode writes the packet.
func (p Packet) Encode() []byte {
	if p.Code == CodeSuccess || p.Code == CodeFailure {
		return []byte{p.Code, p.Identifier, 0, 4}
	}
	b := make([]byte, 5+len(p.Data))
	b[0], b[1] = p.Code, p.Identifier
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[4] = p.Type
	copy(b[5:], p.Data)
	return b
}

// The flags of the TLS-based methods (RFC 5216 §2.1.5; EAP-TTLS, RFC 5281
// §9.1, and PEAP share the framing).
const (
	flagLength = 0x80 // a 4-byte total length follows
	flagMore   = 0x40 // more fragments follow
	flagStart  = 0x20
	versionBit = 0x07 // TTLS and PEAP version; clinicgate speaks 0 of both
)

// maxMessage bounds a reassembled TLS message: far above any handshake
// flight clinicgate accepts (a client certificate chain included), and a
// cap on what one half-open session may hold.
const maxMessage = 64 << 10

// frame is the method data of one EAP-TLS, EAP-TTLS or PEAP packet.
type frame struct {
	flags byte
	total int // with flagLength
	data  []byte
}

func parseFrame(d []byte) (frame, error) {
	if len(d) < 1 {
		return frame{}, errors.New("eap: no flags octet")
	}
	f := frame{flags: d[0], data: d[1:]}
	if f.flags&flagLength != 0 {
		if len(f.data) < 4 {
			return frame{}, errors.New("eap: length flag without a length")
		}
		f.total = int(binary.BigEndian.Uint32(f.data[:4]))
		f.data = f.data[4:]
		if f.total > maxMessage {
			return frame{}, fmt.Errorf("eap: a TLS message of %d bytes, above the %d-byte cap", f.total, maxMessage)
		}
		if len(f.data) > f.total {
			return frame{}, errors.New("eap: a fragment longer than the total length")
		}
	}
	return f, nil
}

func encodeFrame(flags byte, total int, data []byte) []byte {
	if flags&flagLength == 0 {
		return append([]byte{flags}, data...)
	}
	b := make([]byte, 5, 5+len(data))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:5], uint32(total))
	return append(b, data...)
}

// AVP codes of RADIUS attributes inside the tunnel (RFC 5281 §10).
const (
	avpUserName     = 1
	avpUserPassword = 2
	avpFlagVendor   = 0x80
	avpFlagMandator = 0x40
)

// innerPAP is what the peer sent inside the tunnel.
type innerPAP struct {
	user     string
	password []byte
}

// parseAVPs reads the tunnelled AVPs (RFC 5281 §10.1): User-Name and
// User-Password; any other AVP with the M bit is refused, as §10.1 asks.
func parseAVPs(b []byte) (innerPAP, error) {
	var in innerPAP
	var names, pws int
	for len(b) > 0 {
		if len(b) < 8 {
			return innerPAP{}, errors.New("eap-ttls: a truncated AVP header")
		}
		code := binary.BigEndian.Uint32(b[0:4])
		flags := b[4]
		n := int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		hdr := 8
		if flags&avpFlagVendor != 0 {
			hdr = 12
		}
		if n < hdr || n > len(b) {
			return innerPAP{}, fmt.Errorf("eap-ttls: an AVP length of %d", n)
		}
		data := b[hdr:n]
		if flags&avpFlagVendor == 0 {
			switch code {
			case avpUserName:
				in.user, names = string(data), names+1
				goto next
			case avpUserPassword:
				// RFC 5281 §11.2.5: the password may be padded with NULs.
				for len(data) > 0 && data[len(data)-1] == 0 {
					data = data[:len(data)-1]
				}
				in.password, pws = append([]byte{}, data...), pws+1
				goto next
			}
		}
		if flags&avpFlagMandator != 0 {
			return innerPAP{}, fmt.Errorf("eap-ttls: a mandatory AVP %d that clinicgate does not support (only PAP inside TTLS so far)", code)
		}
	next:
		pad := (n + 3) &^ 3
		if pad > len(b) {
			pad = len(b)
		}
		b = b[pad:]
	}
	if names != 1 || pws != 1 {
		return innerPAP{}, fmt.Errorf("eap-ttls: %d User-Name and %d User-Password AVPs inside the tunnel; PAP needs one of each", names, pws)
	}
	return in, nil
}

// appendAVP is for tests and peers: one AVP with the M bit.
func appendAVP(b []byte, code uint32, data []byte) []byte {
	n := 8 + len(data)
	b = binary.BigEndian.AppendUint32(b, code)
	b = append(b, avpFlagMandator, byte(n>>16), byte(n>>8), byte(n))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
