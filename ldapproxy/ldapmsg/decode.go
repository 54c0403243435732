package ldapmsg

import (
	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// Extended operation names (OIDs) the door knows.
const (
	OIDStartTLS                = "1.3.6.1.4.1.1466.20037"  // RFC 4511 §4.14
	OIDWhoAmI                  = "1.3.6.1.4.1.4203.1.11.3" // RFC 4532
	OIDNoticeOfDisconnection   = "1.3.6.1.4.1.1466.20036"  // RFC 4511 §4.4.1
	OIDPasswordModify          = "1.3.6.1.4.1.4203.1.11.1" // RFC 3062
	maxIntBytes                = 8
	classUniversal, classCtx   = 0x00, 0x80
	classApplication           = 0x40
	tagInteger, tagOctetString = 0x02, 0x04
	tagBoolean, tagEnumerated  = 0x01, 0x0a
	tagSequence                = 0x10
)

// Request is one decoded LDAPMessage from a client. Op is the protocolOp's
// application tag (ldap.ApplicationBindRequest, ...); the field for that
// operation is set, the others are nil. Add, modify, delete, modify DN and
// compare are decoded no further than their tag: the door refuses them.
type Request struct {
	ID       int64
	Op       int
	Controls []ldap.Control

	Bind     *BindRequest
	Search   *SearchRequest
	Extended *ExtendedRequest
	// AbandonID is the message ID an abandon request names.
	AbandonID int64
}

// BindRequest is a bind (RFC 4511 §4.2). A simple bind has SASL false and
// the password; a SASL bind has SASL true and the mechanism.
type BindRequest struct {
	Version         int
	Name            string
	Password        string
	SASL            bool
	SASLMechanism   string
	SASLCredentials []byte
}

// SearchRequest is a search (RFC 4511 §4.5.1). Filter is the RFC 4515 text
// of FilterPacket, as go-ldap decompiles it.
type SearchRequest struct {
	BaseDN       string
	Scope        int
	DerefAliases int
	SizeLimit    int64
	TimeLimit    int64
	TypesOnly    bool
	Filter       string
	FilterPacket *ber.Packet
	Attributes   []string
}

// ExtendedRequest is an extended operation (RFC 4511 §4.12). Value is nil
// when the request carries none.
type ExtendedRequest struct {
	Name  string
	Value []byte
}

// element is one BER element inside a frame: its identifier split into
// class, constructed bit and tag number, its contents, and all of it.
type element struct {
	class       byte
	constructed bool
	tag         int
	body, raw   []byte
}

func (e element) is(class byte, constructed bool, tag int) bool {
	return e.class == class && e.constructed == constructed && e.tag == tag
}

// next splits the first element off b. Frames are walked by checkBER
// first; the checks here keep next safe on its own.
func next(b []byte) (element, []byte, error) {
	var e element
	if len(b) < 2 {
		return e, nil, protoErr("truncated element")
	}
	e.class, e.constructed = b[0]&0xc0, b[0]&0x20 != 0
	pos := 1
	if t := b[0] & 0x1f; t != 0x1f {
		e.tag = int(t)
	} else {
		for i := 0; ; i++ {
			if pos >= len(b) || i == 4 {
				return e, nil, protoErr("bad tag")
			}
			c := b[pos]
			pos++
			e.tag = e.tag<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
	}
	if pos >= len(b) {
		return e, nil, protoErr("truncated element")
	}
	l := int(b[pos])
	pos++
	switch {
	case l == 0x80:
		return e, nil, protoErr("indefinite length")
	case l > 0x80:
		k := l & 0x7f
		if k > 4 || k > len(b)-pos {
			return e, nil, protoErr("bad length")
		}
		l = 0
		for _, c := range b[pos : pos+k] {
			l = l<<8 | int(c)
		}
		pos += k
	}
	if l < 0 || l > len(b)-pos {
		return e, nil, protoErr("element longer than its container")
	}
	e.body, e.raw = b[pos:pos+l], b[:pos+l]
	return e, b[pos+l:], nil
}

// take splits off the next element and checks its identifier.
func take(b []byte, class byte, constructed bool, tag int, what string) (element, []byte, error) {
	e, rest, err := next(b)
	if err != nil {
		return e, nil, err
	}
	if !e.is(class, constructed, tag) {
		return e, nil, protoErr("bad " + what)
	}
	return e, rest, nil
}

func parseInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > maxIntBytes {
		return 0, protoErr("bad integer")
	}
	v := int64(int8(b[0])) // sign-extend
	for _, c := range b[1:] {
		v = v<<8 | int64(c)
	}
	return v, nil
}

func takeInt(b []byte, tag int, what string) (int64, []byte, error) {
	e, rest, err := take(b, classUniversal, false, tag, what)
	if err != nil {
		return 0, nil, err
	}
	v, err := parseInt(e.body)
	if err != nil {
		return 0, nil, protoErr("bad " + what)
	}
	return v, rest, nil
}

func takeString(b []byte, what string) (string, []byte, error) {
	e, rest, err := take(b, classUniversal, false, tagOctetString, what)
	if err != nil {
		return "", nil, err
	}
	return string(e.body), rest, nil
}

// maxInt is RFC 4511's maxInt, 2^31-1: the largest MessageID.
const maxInt = 1<<31 - 1

// Decode decodes one frame from ReadFrame. Every error is a
// *ProtocolError: the frame is not an LDAP request the door can read, and
// the connection must end with a Notice of Disconnection.
func Decode(frame []byte) (*Request, error) {
	if err := checkBER(frame, MaxDepth); err != nil {
		return nil, err
	}
	msg, rest, err := take(frame, classUniversal, true, tagSequence, "message")
	if err != nil {
		return nil, protoErr("not an LDAP message")
	}
	if len(rest) != 0 {
		return nil, protoErr("trailing bytes after the message")
	}
	id, body, err := takeInt(msg.body, tagInteger, "message ID")
	if err != nil {
		return nil, err
	}
	if id < 1 || id > maxInt {
		// RFC 4511 §4.1.1.1: MessageID is 0..maxInt, and 0 is the
		// server's unsolicited notification, never a request's.
		return nil, protoErr("message ID outside 1..2147483647")
	}
	op, body, err := next(body)
	if err != nil {
		return nil, err
	}
	if op.class != classApplication {
		return nil, protoErr("not an LDAP request")
	}
	r := &Request{ID: id, Op: op.tag}
	if len(body) > 0 {
		if r.Controls, err = decodeControls(body); err != nil {
			return nil, err
		}
	}
	switch {
	case op.tag == ldap.ApplicationBindRequest && op.constructed:
		r.Bind, err = decodeBind(op.body)
	case op.tag == ldap.ApplicationSearchRequest && op.constructed:
		r.Search, err = decodeSearch(op.body)
	case op.tag == ldap.ApplicationExtendedRequest && op.constructed:
		r.Extended, err = decodeExtended(op.body)
	case op.tag == ldap.ApplicationAbandonRequest && !op.constructed:
		if r.AbandonID, err = parseInt(op.body); err != nil {
			err = protoErr("bad abandon request")
		}
	case op.tag == ldap.ApplicationUnbindRequest && !op.constructed,
		op.tag == ldap.ApplicationDelRequest && !op.constructed,
		op.tag == ldap.ApplicationAddRequest && op.constructed,
		op.tag == ldap.ApplicationModifyRequest && op.constructed,
		op.tag == ldap.ApplicationModifyDNRequest && op.constructed,
		op.tag == ldap.ApplicationCompareRequest && op.constructed:
	default:
		err = protoErr("unknown operation")
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// decodeControls decodes the message's controls ([0] SEQUENCE OF Control)
// with go-ldap. The door acts on none; they are decoded so that a
// malformed one is refused like any other malformed message.
func decodeControls(b []byte) ([]ldap.Control, error) {
	e, _, err := take(b, classCtx, true, 0, "controls")
	if err != nil {
		return nil, err
	}
	p, err := ber.DecodePacketErr(e.raw)
	if err != nil {
		return nil, protoErr("bad controls")
	}
	out := make([]ldap.Control, 0, len(p.Children))
	for _, c := range p.Children {
		if len(c.Children) == 0 || c.Children[0].Tag != ber.TagOctetString {
			return nil, protoErr("bad control")
		}
		ctrl, err := ldap.DecodeControl(c)
		if err != nil {
			return nil, protoErr("bad control")
		}
		out = append(out, ctrl)
	}
	return out, nil
}

func decodeBind(b []byte) (*BindRequest, error) {
	v, b, err := takeInt(b, tagInteger, "bind version")
	if err != nil {
		return nil, err
	}
	if v != 3 {
		// LDAPv2 is long gone (RFC 3494); such a client cannot speak
		// to the door at all.
		return nil, protoErr("only LDAPv3 is supported")
	}
	m := &BindRequest{Version: int(v)}
	if m.Name, b, err = takeString(b, "bind name"); err != nil {
		return nil, err
	}
	auth, _, err := next(b)
	if err != nil {
		return nil, protoErr("bad bind authentication")
	}
	switch {
	case auth.is(classCtx, false, 0):
		m.Password = string(auth.body)
	case auth.is(classCtx, true, 3):
		// SaslCredentials: mechanism, then optional credentials. The
		// mechanism is all a server that supports none needs to refuse
		// it properly.
		m.SASL = true
		var rest []byte
		if m.SASLMechanism, rest, err = takeString(auth.body, "SASL mechanism"); err != nil {
			return nil, err
		}
		if len(rest) > 0 {
			c, _, err := take(rest, classUniversal, false, tagOctetString, "SASL credentials")
			if err != nil {
				return nil, err
			}
			m.SASLCredentials = append([]byte{}, c.body...)
		}
	default:
		return nil, protoErr("bad bind authentication")
	}
	return m, nil
}

func decodeSearch(b []byte) (*SearchRequest, error) {
	m := &SearchRequest{}
	var err error
	var v int64
	if m.BaseDN, b, err = takeString(b, "search base"); err != nil {
		return nil, err
	}
	if v, b, err = takeInt(b, tagEnumerated, "search scope"); err != nil {
		return nil, err
	}
	m.Scope = int(v)
	if v, b, err = takeInt(b, tagEnumerated, "search alias dereferencing"); err != nil {
		return nil, err
	}
	m.DerefAliases = int(v)
	if m.SizeLimit, b, err = takeInt(b, tagInteger, "search size limit"); err != nil {
		return nil, err
	}
	if m.TimeLimit, b, err = takeInt(b, tagInteger, "search time limit"); err != nil {
		return nil, err
	}
	t, b, err := take(b, classUniversal, false, tagBoolean, "search typesOnly")
	if err != nil {
		return nil, err
	}
	if len(t.body) != 1 {
		return nil, protoErr("bad search typesOnly")
	}
	m.TypesOnly = t.body[0] != 0
	f, b, err := next(b)
	if err != nil || f.class != classCtx {
		return nil, protoErr("bad search filter")
	}
	if m.FilterPacket, err = ber.DecodePacketErr(f.raw); err != nil {
		return nil, protoErr("bad search filter")
	}
	if m.Filter, err = ldap.DecompileFilter(m.FilterPacket); err != nil {
		return nil, protoErr("bad search filter")
	}
	if len(b) == 0 {
		// Attributes are required (RFC 4511 §4.5.1), but some clients
		// omit an empty list.
		return m, nil
	}
	attrs, _, err := take(b, classUniversal, true, tagSequence, "search attributes")
	if err != nil {
		return nil, err
	}
	for rest := attrs.body; len(rest) > 0; {
		var a string
		if a, rest, err = takeString(rest, "search attribute"); err != nil {
			return nil, err
		}
		m.Attributes = append(m.Attributes, a)
	}
	return m, nil
}

func decodeExtended(b []byte) (*ExtendedRequest, error) {
	n, b, err := take(b, classCtx, false, 0, "extended request name")
	if err != nil {
		return nil, err
	}
	m := &ExtendedRequest{Name: string(n.body)}
	if len(b) > 0 {
		v, _, err := take(b, classCtx, false, 1, "extended request value")
		if err != nil {
			return nil, err
		}
		m.Value = append([]byte{}, v.body...)
	}
	return m, nil
}
