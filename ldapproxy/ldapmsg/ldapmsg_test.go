package ldapmsg

import (
	"bufio"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// exchange runs do with a go-ldap client whose server end is this
// package: each request the client sends is read with ReadFrame and
// Decode and handed to serve, and whatever serve returns is written back.
// It returns do's error once do has returned.
func exchange(t *testing.T, do func(c *ldap.Conn) error, serve func(r *Request) []byte) error {
	t.Helper()
	cli, srv := net.Pipe()
	t.Cleanup(func() { cli.Close(); srv.Close() })
	c := ldap.NewConn(cli, false)
	c.Start()
	c.SetTimeout(5 * time.Second)
	done := make(chan error, 1)
	go func() { done <- do(c) }()
	br := bufio.NewReader(srv)
	for {
		_ = srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		frame, err := ReadFrame(br, 1<<16, nil)
		if err != nil {
			select {
			case err := <-done:
				return err
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.Fatalf("ReadFrame: %v", err)
		}
		r, err := Decode(frame)
		if err != nil {
			t.Fatalf("Decode of go-ldap's request: %v", err)
		}
		if out := serve(r); len(out) > 0 {
			_ = srv.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := srv.Write(out); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func ldapCode(err error) int {
	var le *ldap.Error
	if errors.As(err, &le) {
		return int(le.ResultCode)
	}
	return -1
}

func TestSimpleBindRoundTrip(t *testing.T) {
	var got *BindRequest
	err := exchange(t, func(c *ldap.Conn) error { return c.Bind("cn=alice,ou=Users,dc=clinic,dc=local", "pw,123456") },
		func(r *Request) []byte {
			if r.Op != ldap.ApplicationBindRequest {
				t.Fatalf("op: got %d, want bind", r.Op)
			}
			got = r.Bind
			return AppendResult(nil, r.ID, ldap.ApplicationBindResponse, Result{Code: ldap.LDAPResultInvalidCredentials, Diagnostic: "Access denied."})
		})
	if got == nil || got.Version != 3 || got.Name != "cn=alice,ou=Users,dc=clinic,dc=local" || got.Password != "pw,123456" || got.SASL {
		t.Errorf("decoded bind: got %+v", got)
	}
	if ldapCode(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "Access denied.") {
		t.Errorf("client saw %v, want invalidCredentials with the diagnostic", err)
	}
	err = exchange(t, func(c *ldap.Conn) error { return c.Bind("alice", "pw") },
		func(r *Request) []byte {
			return AppendResult(nil, r.ID, ldap.ApplicationBindResponse, Result{Code: ldap.LDAPResultSuccess})
		})
	if err != nil {
		t.Errorf("successful bind: client saw %v", err)
	}
}

func TestSASLBindRoundTrip(t *testing.T) {
	var got *BindRequest
	err := exchange(t, func(c *ldap.Conn) error { return c.ExternalBind() },
		func(r *Request) []byte {
			got = r.Bind
			return AppendResult(nil, r.ID, ldap.ApplicationBindResponse, Result{Code: ldap.LDAPResultAuthMethodNotSupported})
		})
	if got == nil || !got.SASL || got.SASLMechanism != "EXTERNAL" || got.Password != "" {
		t.Errorf("decoded SASL bind: got %+v", got)
	}
	if ldapCode(err) != ldap.LDAPResultAuthMethodNotSupported {
		t.Errorf("client saw %v, want authMethodNotSupported", err)
	}
}

func TestSearchRoundTrip(t *testing.T) {
	const filter = "(&(objectClass=user)(|(sAMAccountName=al*ce)(!(cn=x\\2a)))(mail=*)(memberOf:1.2.840.113556.1.4.1941:=cn=nurses,dc=clinic,dc=local))"
	var got *Request
	long := strings.Repeat("x", 70000) // a three-octet length
	res, err := exchange2(t, func(c *ldap.Conn) (*ldap.SearchResult, error) {
		return c.Search(ldap.NewSearchRequest("dc=clinic,dc=local", ldap.ScopeSingleLevel, ldap.DerefAlways, 7, 9, true,
			filter, []string{"memberOf", "sAMAccountName"}, []ldap.Control{ldap.NewControlPaging(50)}))
	}, func(r *Request) []byte {
		got = r
		out := AppendSearchEntry(nil, r.ID, "cn=alice,ou=Users,dc=clinic,dc=local", []Attribute{
			{Name: "memberOf", Values: []string{"cn=nurses,ou=Groups,dc=clinic,dc=local", "cn=staff,ou=Groups,dc=clinic,dc=local"}},
			{Name: "sAMAccountName", Values: []string{"alice"}},
		})
		out = AppendSearchEntry(out, r.ID, "cn=bob,ou=Users,dc=clinic,dc=local", []Attribute{{Name: "description", Values: []string{long}}, {Name: "empty"}})
		return AppendResult(out, r.ID, ldap.ApplicationSearchResultDone, Result{Code: ldap.LDAPResultSuccess})
	})
	if err != nil {
		t.Fatalf("client saw %v", err)
	}
	s := got.Search
	if s == nil {
		t.Fatal("no search decoded")
	}
	want, _ := ldap.CompileFilter(filter)
	wantText, _ := ldap.DecompileFilter(want)
	if s.BaseDN != "dc=clinic,dc=local" || s.Scope != ldap.ScopeSingleLevel || s.DerefAliases != ldap.DerefAlways ||
		s.SizeLimit != 7 || s.TimeLimit != 9 || !s.TypesOnly || s.Filter != wantText ||
		!slices.Equal(s.Attributes, []string{"memberOf", "sAMAccountName"}) {
		t.Errorf("decoded search: got %+v, want filter %q", s, wantText)
	}
	if s.FilterPacket == nil || s.FilterPacket.Tag != ldap.FilterAnd || len(s.FilterPacket.Children) != 4 {
		t.Errorf("filter packet: got %v", s.FilterPacket)
	}
	if len(got.Controls) != 1 || got.Controls[0].GetControlType() != ldap.ControlTypePaging {
		t.Errorf("controls: got %v, want the paging control", got.Controls)
	}
	if len(res.Entries) != 2 {
		t.Fatalf("client got %d entries, want 2", len(res.Entries))
	}
	if e := res.Entries[0]; e.DN != "cn=alice,ou=Users,dc=clinic,dc=local" || len(e.GetAttributeValues("memberOf")) != 2 || e.GetAttributeValue("sAMAccountName") != "alice" {
		t.Errorf("entry 0: got %+v", e)
	}
	if e := res.Entries[1]; e.GetAttributeValue("description") != long || len(e.Attributes) != 2 {
		t.Errorf("entry 1: %d attributes, description of %d bytes", len(e.Attributes), len(e.GetAttributeValue("description")))
	}
}

// exchange2 is exchange for a call that returns a value.
func exchange2[T any](t *testing.T, do func(c *ldap.Conn) (T, error), serve func(r *Request) []byte) (T, error) {
	var v T
	err := exchange(t, func(c *ldap.Conn) error {
		var err error
		v, err = do(c)
		return err
	}, serve)
	return v, err
}

func TestExtendedRoundTrip(t *testing.T) {
	var got *ExtendedRequest
	who, err := exchange2(t, func(c *ldap.Conn) (*ldap.WhoAmIResult, error) { return c.WhoAmI(nil) },
		func(r *Request) []byte {
			got = r.Extended
			return AppendExtendedResponse(nil, r.ID, ExtendedResponse{Result: Result{Code: ldap.LDAPResultSuccess}, Value: []byte("u:alice")})
		})
	if err != nil || who.AuthzID != "u:alice" {
		t.Fatalf("whoami: got %+v, %v", who, err)
	}
	if got == nil || got.Name != OIDWhoAmI || got.Value != nil {
		t.Errorf("decoded whoami: got %+v", got)
	}

	value := ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "payload", "")
	resp, err := exchange2(t, func(c *ldap.Conn) (*ldap.ExtendedResponse, error) {
		return c.Extended(ldap.NewExtendedRequest("1.2.3.4", value))
	}, func(r *Request) []byte {
		got = r.Extended
		return AppendExtendedResponse(nil, r.ID, ExtendedResponse{Result: Result{Code: ldap.LDAPResultSuccess}, Name: "1.2.3.5", Value: []byte{1, 2, 3}})
	})
	if err != nil || resp.Name != "1.2.3.5" || resp.Value == nil || string(resp.Value.Data.Bytes()) != "\x01\x02\x03" {
		t.Fatalf("extended: got %+v, %v", resp, err)
	}
	if got.Name != "1.2.3.4" || string(got.Value) != string(value.Bytes()) {
		t.Errorf("decoded extended: got %+v", got)
	}

	_, err = exchange2(t, func(c *ldap.Conn) (*ldap.PasswordModifyResult, error) {
		return c.PasswordModify(ldap.NewPasswordModifyRequest("cn=alice", "", "x"))
	}, func(r *Request) []byte {
		got = r.Extended
		return AppendExtendedResponse(nil, r.ID, ExtendedResponse{Result: Result{Code: ldap.LDAPResultProtocolError, Diagnostic: "Operation not supported."}})
	})
	if ldapCode(err) != ldap.LDAPResultProtocolError || got.Name != OIDPasswordModify {
		t.Errorf("password modify: client saw %v, decoded %+v", err, got)
	}
}

// Writes are decoded only as far as their tag; each is answered with the
// response type that matches it.
func TestWritesRoundTrip(t *testing.T) {
	dn := "cn=alice,ou=Users,dc=clinic,dc=local"
	add := ldap.NewAddRequest("cn=mallory,"+dn, nil)
	add.Attribute("objectClass", []string{"user"})
	mod := ldap.NewModifyRequest(dn, nil)
	mod.Replace("displayName", []string{"x"})
	for _, tt := range []struct {
		op int
		do func(c *ldap.Conn) error
	}{
		{ldap.ApplicationAddRequest, func(c *ldap.Conn) error { return c.Add(add) }},
		{ldap.ApplicationModifyRequest, func(c *ldap.Conn) error { return c.Modify(mod) }},
		{ldap.ApplicationDelRequest, func(c *ldap.Conn) error { return c.Del(ldap.NewDelRequest(dn, nil)) }},
		{ldap.ApplicationModifyDNRequest, func(c *ldap.Conn) error { return c.ModifyDN(ldap.NewModifyDNRequest(dn, "cn=bob", true, "")) }},
		{ldap.ApplicationCompareRequest, func(c *ldap.Conn) error { _, err := c.Compare(dn, "cn", "alice"); return err }},
	} {
		t.Run(ldap.ApplicationMap[uint8(tt.op)], func(t *testing.T) {
			err := exchange(t, tt.do, func(r *Request) []byte {
				if r.Op != tt.op {
					t.Errorf("op: got %d, want %d", r.Op, tt.op)
				}
				return AppendResult(nil, r.ID, r.Op+1, Result{Code: ldap.LDAPResultInsufficientAccessRights, Diagnostic: "This directory is read-only."})
			})
			if ldapCode(err) != ldap.LDAPResultInsufficientAccessRights {
				t.Errorf("client saw %v, want insufficientAccessRights", err)
			}
		})
	}
}

func TestUnbindAndAbandonDecode(t *testing.T) {
	cli, srv := net.Pipe()
	defer srv.Close()
	c := ldap.NewConn(cli, false)
	c.Start()
	go func() { _ = c.Unbind() }()
	frame, err := ReadFrame(bufio.NewReader(srv), 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decode(frame)
	if err != nil || r.Op != ldap.ApplicationUnbindRequest {
		t.Fatalf("unbind: got %+v, %v", r, err)
	}

	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(9), ""))
	msg.AppendChild(ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, int64(300), ""))
	r, err = Decode(msg.Bytes())
	if err != nil || r.Op != ldap.ApplicationAbandonRequest || r.AbandonID != 300 || r.ID != 9 {
		t.Fatalf("abandon: got %+v, %v", r, err)
	}
}

func TestNoticeOfDisconnection(t *testing.T) {
	p, err := ber.DecodePacketErr(AppendNotice(nil, ldap.LDAPResultProtocolError, "not an LDAP message"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Children) != 2 || p.Children[0].Value != int64(0) {
		t.Fatalf("notice envelope: %d children, id %v; want 2 children and id 0", len(p.Children), p.Children[0].Value)
	}
	op := p.Children[1]
	if op.ClassType != ber.ClassApplication || op.Tag != ldap.ApplicationExtendedResponse || len(op.Children) != 4 {
		t.Fatalf("notice op: class %v tag %d with %d children, want an extended response of 4", op.ClassType, op.Tag, len(op.Children))
	}
	if op.Children[0].Value != int64(ldap.LDAPResultProtocolError) || op.Children[2].Data.String() != "not an LDAP message" {
		t.Errorf("notice result: code %v, diagnostic %q", op.Children[0].Value, op.Children[2].Data.String())
	}
	if n := op.Children[3]; n.ClassType != ber.ClassContext || n.Tag != 10 || n.Data.String() != "1.3.6.1.4.1.1466.20036" {
		t.Errorf("notice responseName: class %v tag %d %q", n.ClassType, n.Tag, n.Data.String())
	}
}

// Message IDs and result codes of every size encode as BER integers that
// go-asn1-ber reads back.
func TestIntegersAndLengthsEncode(t *testing.T) {
	for _, id := range []int64{0, 1, 127, 128, 255, 256, 32767, 32768, 1<<31 - 1} {
		for _, n := range []int{0, 127, 128, 255, 256, 65535, 65536} {
			diag := strings.Repeat("d", n)
			p, err := ber.DecodePacketErr(AppendResult(nil, id, ldap.ApplicationSearchResultDone, Result{Code: ldap.LDAPResultOther, MatchedDN: "dc=x", Diagnostic: diag}))
			if err != nil {
				t.Fatalf("id %d, %d-byte diagnostic: %v", id, n, err)
			}
			if got := p.Children[0].Value; got != id {
				t.Errorf("id: got %v, want %d", got, id)
			}
			op := p.Children[1]
			if op.Children[0].Value != int64(ldap.LDAPResultOther) || op.Children[1].Data.String() != "dc=x" || op.Children[2].Data.Len() != n {
				t.Errorf("id %d, %d-byte diagnostic: decoded %v / %q / %d bytes", id, n, op.Children[0].Value, op.Children[1].Data.String(), op.Children[2].Data.Len())
			}
		}
	}
	for _, v := range []int64{0, 1, -1, 127, 128, -128, -129, 1 << 40, -(1 << 40), 1<<63 - 1, -1 << 63} {
		b := appendInt(nil, idInteger, v)
		got, err := parseInt(b[2:])
		if err != nil || got != v || int(b[1]) != intLen(v) {
			t.Errorf("integer %d: encoded % x, read back %d, %v", v, b, got, err)
		}
	}
}

func TestMalformedRequestsRefused(t *testing.T) {
	deep, _ := ldap.CompileFilter(strings.Repeat("(&", 200) + "(cn=x)" + strings.Repeat(")", 200))
	search := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "")
	search.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, ""))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, ""))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
	search.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, ""))
	search.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, ""))
	search.AppendChild(deep)
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, ""))
	msg.AppendChild(search)
	for name, b := range map[string][]byte{
		"not a sequence":           {0x04, 0x03, 'a', 'b', 'c'},
		"indefinite length":        {0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00},
		"child longer than parent": {0x30, 0x05, 0x02, 0x01, 0x01, 0x04, 0x7f},
		"child claims 2 GiB":       {0x30, 0x08, 0x02, 0x01, 0x01, 0x04, 0x84, 0x7f, 0xff, 0xff},
		"not a request":            {0x30, 0x03, 0x02, 0x01, 0x01},
		"bind with no name":        {0x30, 0x08, 0x02, 0x01, 0x01, 0x60, 0x03, 0x02, 0x01, 0x03},
		"LDAPv2 bind":              {0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x02, 0x04, 0x00, 0x80, 0x00},
		"unknown bind auth":        {0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x81, 0x00},
		"empty message ID":         {0x30, 0x04, 0x02, 0x00, 0x42, 0x00},
		"unknown operation":        {0x30, 0x05, 0x02, 0x01, 0x01, 0x7e, 0x00},
		"a response, not request":  {0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00},
		"constructed unbind":       {0x30, 0x05, 0x02, 0x01, 0x01, 0x62, 0x00},
		"nested 400 deep":          msg.Bytes(),
		"trailing bytes":           {0x30, 0x05, 0x02, 0x01, 0x01, 0x42, 0x00, 0x00},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := Decode(b)
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %+v, %v; want a protocol error", r, err)
			}
		})
	}
}

func TestOversizeFrameRefusedFromItsHeader(t *testing.T) {
	// Claims 16 MiB and sends only the header: refused without waiting
	// for (or buffering) the rest.
	r := bufio.NewReader(strings.NewReader("\x30\x84\x01\x00\x00\x00"))
	_, err := ReadFrame(r, 64<<10, nil)
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a protocol error", err)
	}
}

// TestMessageIDRange: RFC 4511 §4.1.1.1 allows 0..2^31-1, and 0 only for
// the server's unsolicited notification: anything else is a protocol
// error, not a request answered with an ID of 0 or -1 (issue 16).
func TestMessageIDRange(t *testing.T) {
	for _, tc := range []struct {
		id int64
		ok bool
	}{{0, false}, {-1, false}, {1 << 31, false}, {1<<40 + 5, false}, {1, true}, {1<<31 - 1, true}} {
		msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, tc.id, ""))
		msg.AppendChild(ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, int64(3), ""))
		_, err := Decode(msg.Bytes())
		var pe *ProtocolError
		if tc.ok != (err == nil) || (!tc.ok && !errors.As(err, &pe)) {
			t.Errorf("message ID %d: got %v, want ok %v (a protocol error otherwise)", tc.id, err, tc.ok)
		}
	}
}
