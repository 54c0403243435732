package radius

// The client side of RFC 5176 (Dynamic Authorization Extensions): the
// appliance asks a NAS to end a session (Disconnect-Request) or to move it
// (CoA-Request with a quarantine VLAN or Filter-Id) when the session's
// device or user loses its right. It speaks the wire and nothing else:
// which sessions, which NAS and which request are the caller's (the
// daemon's CoA worker) to decide.

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2866"
	"layeh.com/radius/rfc2868"
	"layeh.com/radius/rfc2869"
	"layeh.com/radius/rfc3162"
	"layeh.com/radius/rfc3576"
	"layeh.com/radius/rfc3580"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/internal/msgauth"
	"github.com/clinicgate/clinicgate/internal/ratelog"
)

// DynAuthKind is which request to send.
type DynAuthKind int

const (
	// Disconnect is a Disconnect-Request (code 40): end the session.
	Disconnect DynAuthKind = iota
	// CoA is a CoA-Request (code 43) carrying the quarantine VLAN and/or
	// Filter-Id: move the session without ending it.
	CoA
)

func (k DynAuthKind) String() string {
	if k == CoA {
		return "CoA-Request"
	}
	return "Disconnect-Request"
}

func (k DynAuthKind) codes() (req, ack, nak radius.Code) {
	if k == CoA {
		return radius.CodeCoARequest, radius.CodeCoAACK, radius.CodeCoANAK
	}
	return radius.CodeDisconnectRequest, radius.CodeDisconnectACK, radius.CodeDisconnectNAK
}

// DynAuthRequest is one request to one NAS about one session. The session
// is identified by the attributes its accounting carried, as the NAS sent
// them (RFC 5176 §3: a NAS matches on them; one it does not recognise is a
// NAK, never a guess).
type DynAuthRequest struct {
	Kind   DynAuthKind
	NAS    netip.AddrPort // where the NAS listens (port 3799 by default)
	Secret secrets.Secret // the client's shared secret

	UserName       string
	CallingStation string
	AcctSessionID  string
	NASIPAddress   netip.Addr // as accounting reported it; zero: not sent
	NASIdentifier  string     // as accounting reported it; "": not sent

	// For CoA: the quarantine. VLAN 0 and FilterID "" leave that out.
	VLAN     int
	FilterID string
}

// DynAuthOutcome is what the NAS answered.
type DynAuthOutcome string

const (
	DynAuthACK     DynAuthOutcome = "ack"
	DynAuthNAK     DynAuthOutcome = "nak"
	DynAuthTimeout DynAuthOutcome = "timeout"
)

// DynAuthResult is the NAS's answer.
type DynAuthResult struct {
	Outcome DynAuthOutcome
	// ErrorCause is the NAK's (or, rarely, the ACK's) Error-Cause; 0 when
	// the NAS sent none.
	ErrorCause ErrorCause
	// Tries is how many times the request was sent.
	Tries int
	// Dropped counts replies thrown away: from another address, with
	// another identifier, or failing the Response Authenticator or the
	// Message-Authenticator (spoofed, or a wrong shared secret).
	Dropped int
}

func (r DynAuthResult) String() string {
	s := string(r.Outcome)
	switch r.Outcome {
	case DynAuthACK:
		s = "ACK"
	case DynAuthNAK:
		s = "NAK"
	}
	if r.ErrorCause != 0 {
		s += " " + r.ErrorCause.String()
	}
	s += fmt.Sprintf(" after %d %s", r.Tries, map[bool]string{true: "try", false: "tries"}[r.Tries == 1])
	if r.Dropped > 0 {
		s += fmt.Sprintf(", %d forged or stray %s dropped", r.Dropped, map[bool]string{true: "reply", false: "replies"}[r.Dropped == 1])
	}
	return s
}

// ErrorCause is RFC 5176 §3.5's Error-Cause.
type ErrorCause uint32

// The Error-Cause values of RFC 5176 §3.5 with their names there.
var errorCauseNames = map[ErrorCause]string{
	201: "Residual Session Context Removed",
	202: "Invalid EAP Packet (Ignored)",
	401: "Unsupported Attribute",
	402: "Missing Attribute",
	403: "NAS Identification Mismatch",
	404: "Invalid Request",
	405: "Unsupported Service",
	406: "Unsupported Extension",
	407: "Invalid Attribute Value",
	501: "Administratively Prohibited",
	502: "Request Not Routable (Proxy)",
	503: "Session Context Not Found",
	504: "Session Context Not Removable",
	505: "Other Proxy Processing Error",
	506: "Resources Unavailable",
	507: "Request Initiated",
	508: "Multiple Session Selection Unsupported",
}

// The causes a caller acts on.
const (
	CauseUnsupportedAttribute ErrorCause = 401
	CauseUnsupportedService   ErrorCause = 405
	CauseUnsupportedExtension ErrorCause = 406
	CauseSessionNotFound      ErrorCause = 503
)

func (c ErrorCause) String() string {
	if n, ok := errorCauseNames[c]; ok {
		return fmt.Sprintf("%d %q", uint32(c), n)
	}
	return strconv.FormatUint(uint64(c), 10)
}

// Defaults of DynAuthClient.
const (
	DefaultDynAuthTries = 3
	DefaultDynAuthWait  = 2 * time.Second
	maxDynAuthWait      = 8 * time.Second
)

// DynAuthClient sends RFC 5176 requests. The zero value works: three tries,
// waiting 2 s, then 4 s, then 8 s for an answer.
type DynAuthClient struct {
	// Tries bounds the sends of one request (0: DefaultDynAuthTries).
	Tries int
	// Wait is how long the first try waits; each retry waits twice as
	// long, up to 8 s (0: DefaultDynAuthWait).
	Wait time.Duration
	// Logger receives dropped replies (rate-limited); nil: discarded.
	Logger *slog.Logger
	// Now is the clock for Event-Timestamp (nil: time.Now).
	Now func() time.Time

	once     sync.Once
	bad      *ratelog.Logger
	nowValue func() time.Time
}

func (c *DynAuthClient) init() { c.once.Do(c.setup) }

func (c *DynAuthClient) setup() {
	c.nowValue = c.Now
	if c.nowValue == nil {
		c.nowValue = time.Now
	}
	l := c.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	c.bad = ratelog.New(l, 10*time.Second, c.nowValue)
}

// ErrDynAuthRequest is a request that cannot be sent as asked.
var ErrDynAuthRequest = errors.New("dynamic authorization request")

// Encode builds the request's packet, signed: Message-Authenticator
// computed with a zero Request Authenticator, then the Request
// Authenticator of RFC 5176 §2.3 (MD5 over the packet with sixteen zero
// octets in its place, then the secret, as for Accounting-Request), which
// is how hostapd and FreeRADIUS check it. It returns the packet and its
// encoding.
func (r DynAuthRequest) Encode(id byte, now time.Time) (*radius.Packet, []byte, error) {
	if len(r.Secret) == 0 {
		return nil, nil, fmt.Errorf("%w: no shared secret", ErrDynAuthRequest)
	}
	if r.AcctSessionID == "" && r.CallingStation == "" && r.UserName == "" {
		return nil, nil, fmt.Errorf("%w: nothing names the session", ErrDynAuthRequest)
	}
	code, _, _ := r.Kind.codes()
	p := &radius.Packet{Code: code, Identifier: id, Secret: r.Secret}
	str := func(t radius.Type, v string) error {
		if v == "" {
			return nil
		}
		if len(v) > 253 {
			return fmt.Errorf("%w: attribute %d longer than 253 bytes", ErrDynAuthRequest, t)
		}
		p.Add(t, radius.Attribute(v))
		return nil
	}
	// Message-Authenticator first, as the BlastRADIUS advisory asks.
	p.Add(rfc2869.MessageAuthenticator_Type, make([]byte, msgauth.Size))
	if r.NASIPAddress.Is4() {
		p.Add(rfc2865.NASIPAddress_Type, radius.Attribute(r.NASIPAddress.AsSlice()))
	} else if r.NASIPAddress.Is6() {
		p.Add(rfc3162.NASIPv6Address_Type, radius.Attribute(r.NASIPAddress.AsSlice()))
	}
	for _, a := range []struct {
		t radius.Type
		v string
	}{
		{rfc2865.NASIdentifier_Type, r.NASIdentifier},
		{rfc2865.UserName_Type, r.UserName},
		{rfc2865.CallingStationID_Type, r.CallingStation},
		{rfc2866.AcctSessionID_Type, r.AcctSessionID},
	} {
		if err := str(a.t, a.v); err != nil {
			return nil, nil, err
		}
	}
	if err := rfc2869.EventTimestamp_Add(p, now); err != nil {
		return nil, nil, err
	}
	if r.Kind == CoA {
		if r.VLAN == 0 && r.FilterID == "" {
			return nil, nil, fmt.Errorf("%w: a CoA-Request needs a VLAN or a Filter-Id", ErrDynAuthRequest)
		}
		if r.VLAN > 0 {
			// As the Access-Accept carries it (RFC 3580 §3.31).
			if err := rfc2868.TunnelType_Add(p, 0, rfc2868.TunnelType(rfc3580.TunnelType_Value_VLAN)); err != nil {
				return nil, nil, err
			}
			if err := rfc2868.TunnelMediumType_Add(p, 0, rfc2868.TunnelMediumType_Value_IEEE802); err != nil {
				return nil, nil, err
			}
			p.Add(rfc2868.TunnelPrivateGroupID_Type, radius.Attribute(strconv.Itoa(r.VLAN)))
		}
		if err := str(rfc2865.FilterID_Type, r.FilterID); err != nil {
			return nil, nil, err
		}
	}
	b, err := p.MarshalBinary() // Authenticator all zero
	if err != nil {
		return nil, nil, err
	}
	if err := msgauth.Sign(b, r.Secret); err != nil {
		return nil, nil, err
	}
	off, _ := msgauth.Find(b)
	p.Attributes.Set(rfc2869.MessageAuthenticator_Type, radius.Attribute(append([]byte(nil), b[off:off+msgauth.Size]...)))
	// Encode computes the Request Authenticator over sixteen zero octets
	// for these codes (RFC 5176 §2.3).
	if b, err = p.Encode(); err != nil {
		return nil, nil, err
	}
	copy(p.Authenticator[:], b[4:20])
	return p, b, nil
}

// Send sends the request to r.NAS, retransmitting the same packet (same
// Identifier and authenticator, RFC 5176 §2.3) with a doubling wait, and
// returns the first genuine answer, or a DynAuthTimeout result when none
// came. A reply from another address, with another identifier or code, or
// whose Response Authenticator or Message-Authenticator does not verify is
// dropped and logged, and the wait goes on: a forged ACK can neither end
// the wait nor hide the real answer. The error is non-nil only when the
// request could not be sent at all (or ctx ended).
func (c *DynAuthClient) Send(ctx context.Context, r DynAuthRequest) (DynAuthResult, error) {
	c.init()
	if !r.NAS.IsValid() || r.NAS.Port() == 0 {
		return DynAuthResult{}, fmt.Errorf("%w: no NAS address", ErrDynAuthRequest)
	}
	var idb [1]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return DynAuthResult{}, err
	}
	_, b, err := r.Encode(idb[0], c.nowValue())
	if err != nil {
		return DynAuthResult{}, err
	}
	// A socket of its own per request, on an ephemeral port on every
	// address (unconnected, so a reply from elsewhere is seen, logged and
	// dropped rather than silently filtered).
	conn, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return DynAuthResult{}, fmt.Errorf("open a socket for %s: %w", r.Kind, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	tries, wait := c.Tries, c.Wait
	if tries <= 0 {
		tries = DefaultDynAuthTries
	}
	if wait <= 0 {
		wait = DefaultDynAuthWait
	}
	to := net.UDPAddrFromAddrPort(r.NAS)
	var res DynAuthResult
	buf := make([]byte, radius.MaxPacketLength)
	for res.Tries < tries {
		if _, err := conn.WriteTo(b, to); err != nil {
			return res, fmt.Errorf("send %s to %s: %w", r.Kind, r.NAS, err)
		}
		res.Tries++
		deadline := time.Now().Add(wait)
		if wait *= 2; wait > maxDynAuthWait {
			wait = maxDynAuthWait
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return res, err
		}
		for {
			n, from, err := conn.ReadFrom(buf)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil {
				return res, fmt.Errorf("read the answer to %s from %s: %w", r.Kind, r.NAS, err)
			}
			outcome, cause, why := r.answer(buf[:n], from, b)
			if why != "" {
				res.Dropped++
				c.bad.Warn("dropped a reply to a "+r.Kind.String()+": "+why, "nas", r.NAS.String(), "from", from.String())
				continue
			}
			res.Outcome, res.ErrorCause = outcome, cause
			return res, nil
		}
	}
	res.Outcome = DynAuthTimeout
	return res, nil
}

// answer reads the datagram b from from as the NAS's answer to req (the
// request as sent): ACK or NAK, and the Error-Cause if any; or why it is
// not the answer, when it comes from another address, is not an ACK or NAK
// of this request, or fails the Response Authenticator or the
// Message-Authenticator.
func (r DynAuthRequest) answer(b []byte, from net.Addr, req []byte) (DynAuthOutcome, ErrorCause, string) {
	if why := r.check(b, from, req); why != "" {
		return "", 0, why
	}
	reply, err := radius.Parse(b, r.Secret)
	if err != nil {
		return "", 0, "it is malformed: " + err.Error()
	}
	_, _, nak := r.Kind.codes()
	outcome := DynAuthACK
	if reply.Code == nak {
		outcome = DynAuthNAK
	}
	var cause ErrorCause
	if v := reply.Get(rfc3576.ErrorCause_Type); len(v) == 4 {
		cause = ErrorCause(binary.BigEndian.Uint32(v))
	}
	return outcome, cause, ""
}

// check says why b is not the answer to req, or "" when it may be.
func (r DynAuthRequest) check(b []byte, from net.Addr, req []byte) string {
	_, ack, nak := r.Kind.codes()
	ua, ok := from.(*net.UDPAddr)
	if !ok || ua.AddrPort().Addr().Unmap() != r.NAS.Addr().Unmap() {
		return "it came from another address"
	}
	if len(b) < 20 || (radius.Code(b[0]) != ack && radius.Code(b[0]) != nak) {
		return "it is not an ACK or NAK of this request"
	}
	if b[1] != req[1] {
		return "its identifier is not the request's"
	}
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length < 20 || length > len(b) {
		return "its length is wrong"
	}
	b = b[:length]
	// Response Authenticator (RFC 5176 §2.3), compared in constant time.
	h := md5.New()
	h.Write(b[:4])
	h.Write(req[4:20])
	h.Write(b[20:])
	h.Write(r.Secret)
	if !hmac.Equal(h.Sum(nil), b[4:20]) {
		return "its Response Authenticator is wrong (forged, or the NAS has another shared secret)"
	}
	if err := msgauth.VerifyResponse(b, req[4:20], r.Secret); err != nil {
		return err.Error()
	}
	return ""
}
