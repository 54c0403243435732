package ldapproxy_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/ldapproxy"
	"github.com/clinicgate/clinicgate/ldapproxy/ldapmsg"
)

// rawMessage encodes an LDAPMessage around op.
func rawMessage(id int64, op *ber.Packet) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	p.AppendChild(op)
	return p.Bytes()
}

func whoAmIRequest(id int64) []byte {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "")
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, ldapmsg.OIDWhoAmI, ""))
	return rawMessage(id, op)
}

// RFC 4511 §4.11: an abandon never gets a response, and the connection
// goes on.
func TestAbandonGetsNoResponse(t *testing.T) {
	e := newEnv(t, opts{})
	c := rawConn(t, e.addr)
	msg := rawMessage(1, ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, int64(7), ""))
	if _, err := c.Write(append(msg, whoAmIRequest(2)...)); err != nil {
		t.Fatal(err)
	}
	p, err := ber.ReadPacket(c)
	if err != nil {
		t.Fatal(err)
	}
	if id := p.Children[0].Value; id != int64(2) {
		t.Fatalf("first response is to message %v, want 2 (the abandon gets none):\n%s", id, dump(p))
	}
}

// Requests sent back to back, more than a connection handles at once,
// are all answered: reading pauses, it does not stop.
func TestPipelinedRequestsAllAnswered(t *testing.T) {
	e := newEnv(t, opts{})
	c := rawConn(t, e.addr)
	const n = 40
	var b []byte
	for i := range n {
		b = append(b, whoAmIRequest(int64(i+1))...)
	}
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for range n {
		p, err := ber.ReadPacket(c)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(seen), err)
		}
		id, _ := p.Children[0].Value.(int64)
		if code := p.Children[1].Children[0].Value; code != int64(ldap.LDAPResultSuccess) || seen[id] {
			t.Fatalf("answer to %d: code %v, seen before %v", id, code, seen[id])
		}
		seen[id] = true
	}
}

// At shutdown an idle client is told why the connection ends (RFC 4511
// §4.4.1: a Notice of Disconnection with unavailable).
func TestShutdownSendsNoticeOfDisconnection(t *testing.T) {
	e := newEnv(t, opts{cfg: func(c *ldapproxy.Config) { c.IdleTimeout = time.Hour }})
	c := rawConn(t, e.addr)
	if _, err := c.Write(whoAmIRequest(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ber.ReadPacket(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := ber.ReadPacket(c)
	if err != nil {
		t.Fatalf("want a Notice of Disconnection, got %v", err)
	}
	r := p.Children[1].Children
	if p.Children[0].Value != int64(0) || r[0].Value != int64(ldap.LDAPResultUnavailable) || len(r) < 4 || r[3].Data.String() != ldapmsg.OIDNoticeOfDisconnection {
		t.Fatalf("want an unavailable notice, got:\n%s", dump(p))
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("after the notice: %v, want EOF", err)
	}
}

// pipelinedStartTLS sends the StartTLS request in the same write as the
// TLS ClientHello, and reads the StartTLS response before the TLS layer
// reads the ServerHello.
type pipelinedStartTLS struct {
	net.Conn
	req  []byte
	resp *ber.Packet
}

func (p *pipelinedStartTLS) Write(b []byte) (int, error) {
	if p.req != nil {
		all := append(p.req, b...)
		p.req = nil
		if _, err := p.Conn.Write(all); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return p.Conn.Write(b)
}

func (p *pipelinedStartTLS) Read(b []byte) (int, error) {
	if p.resp == nil {
		r, err := ber.ReadPacket(p.Conn)
		if err != nil {
			return 0, err
		}
		p.resp = r
	}
	return p.Conn.Read(b)
}

// A client that starts its TLS handshake without waiting for the StartTLS
// response still gets TLS: the bytes the door read ahead are not lost.
func TestStartTLSWithPipelinedHandshake(t *testing.T) {
	e := newEnv(t, opts{})
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "")
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, ldapmsg.OIDStartTLS, ""))
	pc := &pipelinedStartTLS{Conn: rawConn(t, e.addr), req: rawMessage(1, op)}
	tc := tls.Client(pc, e.tlsConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if code := pc.resp.Children[1].Children[0].Value; code != int64(ldap.LDAPResultSuccess) {
		t.Fatalf("StartTLS: got code %v", code)
	}
	c := ldap.NewConn(tc, true)
	c.Start()
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	if err := c.Bind("alice", alicePW); err != nil {
		t.Fatalf("bind over the pipelined StartTLS: %v", err)
	}
}
