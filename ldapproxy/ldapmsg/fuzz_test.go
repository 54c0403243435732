package ldapmsg

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// seedMessages are real requests, encoded as go-ldap sends them.
func seedMessages() [][]byte {
	msg := func(id int64, op *ber.Packet) []byte {
		p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
		p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
		p.AppendChild(op)
		return p.Bytes()
	}
	bind := func(name, pw string) *ber.Packet {
		b := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "Bind")
		b.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
		b.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "Name"))
		b.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, pw, "Password"))
		return b
	}
	sasl := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationBindRequest, nil, "Bind")
	sasl.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
	sasl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "Name"))
	creds := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "SASL")
	creds.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "EXTERNAL", "Mechanism"))
	sasl.AppendChild(creds)
	search := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "Search")
	search.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "dc=clinic,dc=local", "Base"))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, "Scope"))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "Deref"))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Size"))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Time"))
	search.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "TypesOnly"))
	f, _ := ldap.CompileFilter("(&(objectClass=user)(|(sAMAccountName=al*ce)(!(cn=x)))(mail=*))")
	search.AppendChild(f)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "memberOf", "Attribute"))
	search.AppendChild(attrs)
	starttls := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "Extended")
	starttls.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, OIDStartTLS, "Name"))
	abandon := ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, 1, "Abandon")
	unbind := ber.Encode(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationUnbindRequest, nil, "Unbind")
	return [][]byte{
		msg(1, bind("cn=alice,ou=Users,dc=clinic,dc=local", "pw,123456")),
		msg(2, sasl), msg(3, search), msg(4, starttls), msg(5, abandon), msg(6, unbind),
		append(msg(1, bind(`CLINIC\alice`, "pw")), msg(2, search)...),
	}
}

// FuzzReadRequest feeds untrusted bytes through what a connection does
// with them: framing under the size limit, the BER structure check and
// decoding into a request. Nothing may panic, no message larger than the
// limit may be accepted, and every refusal is a protocol error or the end
// of input.
func FuzzReadRequest(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Add([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0x30, 0x08, 0x02, 0x01, 0x01, 0x04, 0x84, 0x7f, 0xff, 0xff})
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		var buf []byte
		for range 8 {
			frame, err := ReadFrame(r, limit, buf)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("ReadFrame: unexpected error kind %v", err)
				}
				return
			}
			if len(frame) > limit {
				t.Fatalf("a %d-byte message passed a %d-byte limit", len(frame), limit)
			}
			req, err := Decode(frame)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("Decode: unexpected error kind %v", err)
				}
				continue
			}
			switch {
			case req.Op == ldap.ApplicationBindRequest && req.Bind == nil,
				req.Op == ldap.ApplicationSearchRequest && req.Search == nil,
				req.Op == ldap.ApplicationExtendedRequest && req.Extended == nil:
				t.Fatalf("op %d decoded without its request", req.Op)
			}
			if KeepBuffer(frame) {
				buf = frame
			}
		}
	})
}
