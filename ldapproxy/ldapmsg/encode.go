package ldapmsg

import "github.com/go-ldap/ldap/v3"

// Result is an LDAPResult (RFC 4511 §4.1.9): a result code (ldap.LDAPResult…),
// the matched DN and a diagnostic message. The diagnostic goes on the wire:
// it must be a fixed, safe text.
type Result struct {
	Code       int
	MatchedDN  string
	Diagnostic string
}

// ExtendedResponse is an extended operation's response (RFC 4511 §4.12).
// Name is omitted when empty; Value is omitted when nil (an empty, non-nil
// Value is sent as an empty responseValue).
type ExtendedResponse struct {
	Result
	Name  string
	Value []byte
}

// Attribute is one attribute of a search result entry.
type Attribute struct {
	Name   string
	Values []string
}

// Identifier octets of what the door sends.
const (
	idInteger     = 0x02
	idOctetString = 0x04
	idEnumerated  = 0x0a
	idSequence    = 0x30
	idSet         = 0x31
	idApplication = 0x60 // constructed, application class; | tag
	idRespName    = 0x8a // [10] responseName
	idRespValue   = 0x8b // [11] responseValue
)

// lenLen is how many octets the definite length n takes.
func lenLen(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffff:
		return 4
	}
	return 5
}

// tlv is the size of an element with a one-octet identifier and n octets
// of content.
func tlv(n int) int { return 1 + lenLen(n) + n }

func appendHeader(b []byte, id byte, n int) []byte {
	b = append(b, id)
	switch k := lenLen(n); k {
	case 1:
		return append(b, byte(n))
	default:
		b = append(b, 0x80|byte(k-1))
		for i := k - 2; i >= 0; i-- {
			b = append(b, byte(n>>(8*i)))
		}
		return b
	}
}

func appendString(b []byte, id byte, s string) []byte {
	return append(appendHeader(b, id, len(s)), s...)
}

// intLen is the size of v's minimal two's-complement encoding.
func intLen(v int64) int {
	n := 1
	for v > 127 || v < -128 {
		v >>= 8
		n++
	}
	return n
}

func appendInt(b []byte, id byte, v int64) []byte {
	n := intLen(v)
	b = appendHeader(b, id, n)
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// contentLen is the size of an LDAPResult's three fields.
func (r *Result) contentLen() int {
	return tlv(intLen(int64(r.Code))) + tlv(len(r.MatchedDN)) + tlv(len(r.Diagnostic))
}

func (r *Result) appendFields(b []byte) []byte {
	b = appendInt(b, idEnumerated, int64(r.Code))
	b = appendString(b, idOctetString, r.MatchedDN)
	return appendString(b, idOctetString, r.Diagnostic)
}

// appendMessage starts an LDAPMessage: its SEQUENCE header, the message
// ID and the protocolOp's header, for a protocolOp of opLen octets.
func appendMessage(b []byte, id int64, op, opLen int) []byte {
	b = appendHeader(b, idSequence, tlv(intLen(id))+tlv(opLen))
	b = appendInt(b, idInteger, id)
	return appendHeader(b, idApplication|byte(op), opLen)
}

// AppendResult appends an LDAPMessage whose protocolOp is a bare
// LDAPResult under the application tag op: a bind response (without
// serverSaslCreds), search result done, modify, add, delete, modify DN or
// compare response, or an extended response without name or value.
func AppendResult(b []byte, id int64, op int, r Result) []byte {
	b = appendMessage(b, id, op, r.contentLen())
	return r.appendFields(b)
}

// AppendExtendedResponse appends an extended response.
func AppendExtendedResponse(b []byte, id int64, r ExtendedResponse) []byte {
	n := r.contentLen()
	if r.Name != "" {
		n += tlv(len(r.Name))
	}
	if r.Value != nil {
		n += tlv(len(r.Value))
	}
	b = appendMessage(b, id, ldap.ApplicationExtendedResponse, n)
	b = r.appendFields(b)
	if r.Name != "" {
		b = appendString(b, idRespName, r.Name)
	}
	if r.Value != nil {
		b = append(appendHeader(b, idRespValue, len(r.Value)), r.Value...)
	}
	return b
}

// AppendNotice appends a Notice of Disconnection (RFC 4511 §4.4.1), the
// unsolicited notification (message ID 0) a server sends before it ends a
// connection: code protocolError for a message it cannot read, unavailable
// when it shuts down.
func AppendNotice(b []byte, code int, diagnostic string) []byte {
	return AppendExtendedResponse(b, 0, ExtendedResponse{
		Result: Result{Code: code, Diagnostic: diagnostic}, Name: OIDNoticeOfDisconnection,
	})
}

// AppendSearchEntry appends a search result entry with attrs in the given
// order.
func AppendSearchEntry(b []byte, id int64, dn string, attrs []Attribute) []byte {
	listLen := 0
	for _, a := range attrs {
		listLen += tlv(attrLen(a))
	}
	n := tlv(len(dn)) + tlv(listLen)
	b = appendMessage(b, id, ldap.ApplicationSearchResultEntry, n)
	b = appendString(b, idOctetString, dn)
	b = appendHeader(b, idSequence, listLen)
	for _, a := range attrs {
		b = appendHeader(b, idSequence, attrLen(a))
		b = appendString(b, idOctetString, a.Name)
		b = appendHeader(b, idSet, valsLen(a.Values))
		for _, v := range a.Values {
			b = appendString(b, idOctetString, v)
		}
	}
	return b
}

func valsLen(vs []string) int {
	n := 0
	for _, v := range vs {
		n += tlv(len(v))
	}
	return n
}

// attrLen is the content size of a PartialAttribute: its type and the SET
// of its values.
func attrLen(a Attribute) int { return tlv(len(a.Name)) + tlv(valsLen(a.Values)) }
