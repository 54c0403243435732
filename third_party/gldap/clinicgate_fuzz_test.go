// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/hashicorp/go-hclog"
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
		b := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindRequest, nil, "Bind")
		b.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
		b.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "Name"))
		b.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, pw, "Password"))
		return b
	}
	sasl := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindRequest, nil, "Bind")
	sasl.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
	sasl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "Name"))
	creds := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "SASL")
	creds.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "EXTERNAL", "Mechanism"))
	sasl.AppendChild(creds)
	search := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationSearchRequest, nil, "Search")
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
	starttls := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationExtendedRequest, nil, "Extended")
	starttls.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, string(ExtendedOperationStartTLS), "Name"))
	abandon := ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ApplicationAbandonRequest, 1, "Abandon")
	unbind := ber.Encode(ber.ClassApplication, ber.TypePrimitive, ApplicationUnbindRequest, nil, "Unbind")
	return [][]byte{
		msg(1, bind("cn=alice,ou=Users,dc=clinic,dc=local", "pw,123456")),
		msg(2, sasl), msg(3, search), msg(4, starttls), msg(5, abandon), msg(6, unbind),
		append(msg(1, bind(`CLINIC\alice`, "pw")), msg(2, search)...),
	}
}

// FuzzReadRequest feeds untrusted bytes through what a connection does
// with them: framing under the size limit, the BER structure check,
// decoding and building the request. Nothing may panic, and no message
// larger than the limit may be accepted.
func FuzzReadRequest(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Add([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0x30, 0x08, 0x02, 0x01, 0x01, 0x04, 0x84, 0x7f, 0xff, 0xff})
	const max = 4096
	c := &conn{connID: 1, logger: hclog.NewNullLogger(), router: &Mux{}, shutdownCtx: context.Background()}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 8 {
			frame, err := readFrame(r, max)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) && !errors.Is(err, errEOFish) && !isEOF(err) {
					t.Fatalf("readFrame: unexpected error kind %v", err)
				}
				return
			}
			if len(frame) > max {
				t.Fatalf("a %d-byte message passed a %d-byte limit", len(frame), max)
			}
			p, err := decodeFrame(frame)
			if err != nil {
				continue
			}
			pk := &packet{Packet: p}
			if pk.basicValidation() != nil {
				continue
			}
			req, err := newRequest(1, c, pk)
			if err != nil {
				continue
			}
			_ = req.ProtocolOp()
			if m, err := req.GetSimpleBindMessage(); err == nil {
				_ = m.SASLMechanism()
			}
			_, _ = req.GetSearchMessage()
			_, _ = req.GetModifyMessage()
			_, _ = req.GetAddMessage()
			_, _ = req.GetDeleteMessage()
		}
	})
}

var errEOFish = errors.New("eof")

func isEOF(err error) bool {
	return err != nil && (err.Error() == "EOF" || err.Error() == "unexpected EOF")
}
