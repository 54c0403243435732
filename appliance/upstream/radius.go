package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/internal/msgauth"
)

// RADIUSConfig configures a RADIUS upstream (JumpCloud, NPS, FreeRADIUS).
type RADIUSConfig struct {
	// Servers are host:port pairs, tried in order.
	Servers []string `json:"servers"`
	// RequireMessageAuthenticator drops replies without a valid
	// Message-Authenticator. Some servers (FreeRADIUS 3.2.1 as packaged in
	// Debian 12, for PAP) do not send one; turning this off for them is
	// shown as a warning.
	RequireMessageAuthenticator bool `json:"require_message_authenticator"`
	// TimeoutMS is one attempt's wait; BudgetMS the whole check's, kept
	// under a NAS's 3-5 s retransmit so a retry never causes a second
	// upstream call.
	TimeoutMS int `json:"timeout_ms"`
	BudgetMS  int `json:"budget_ms"`
	// GroupAttribute names a reply attribute whose values are group names:
	// "Class" or "Filter-Id" (empty: none).
	GroupAttribute string `json:"group_attribute,omitempty"`
	// NASIdentifier is sent in requests (default "clinicgate").
	NASIdentifier string `json:"nas_identifier,omitempty"`
	// PassAttributes names reply attributes of the upstream's
	// Access-Accept to pass on to the NAS (see PassableAttributes). An
	// attribute clinicgate sets itself (VLAN, Session-Timeout, Class from a
	// group rule) wins over the upstream's.
	PassAttributes []string `json:"pass_attributes,omitempty"`
}

// PassableAttributes are the reply attributes an upstream may pass
// through, by name. Others (Reply-Message, State, Message-Authenticator,
// Proxy-State, EAP) never pass.
var PassableAttributes = map[string]byte{
	"Class": 25, "Filter-Id": 11, "Session-Timeout": 27, "Idle-Timeout": 28,
	"Framed-IP-Address": 8, "Framed-IP-Netmask": 9, "Vendor-Specific": 26,
	"Tunnel-Type": 64, "Tunnel-Medium-Type": 65, "Tunnel-Private-Group-Id": 81,
}

// Defaults fills unset fields.
func (c *RADIUSConfig) Defaults() {
	if c.TimeoutMS == 0 {
		c.TimeoutMS = 1200
	}
	if c.BudgetMS == 0 {
		c.BudgetMS = 2500
	}
	if c.NASIdentifier == "" {
		c.NASIdentifier = "clinicgate"
	}
}

// Validate reports every problem at once.
func (c RADIUSConfig) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("no servers: give at least one host:port (port 1812 usually)"))
	}
	for _, s := range c.Servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			errs = append(errs, fmt.Errorf("server %q is not host:port (for example 10.0.0.5:1812)", s))
		}
	}
	if c.TimeoutMS < 100 || c.TimeoutMS > 10000 {
		errs = append(errs, fmt.Errorf("timeout_ms %d is outside 100-10000", c.TimeoutMS))
	}
	if c.BudgetMS < c.TimeoutMS || c.BudgetMS > 20000 {
		errs = append(errs, fmt.Errorf("budget_ms %d must be at least timeout_ms and at most 20000", c.BudgetMS))
	}
	switch c.GroupAttribute {
	case "", "Class", "Filter-Id":
	default:
		errs = append(errs, fmt.Errorf("group_attribute %q: use Class, Filter-Id or nothing", c.GroupAttribute))
	}
	for _, a := range c.PassAttributes {
		if _, ok := PassableAttributes[a]; !ok {
			errs = append(errs, fmt.Errorf("pass_attributes: %q cannot be passed through (allowed: Class, Filter-Id, Session-Timeout, Idle-Timeout, Framed-IP-Address, Framed-IP-Netmask, Vendor-Specific, Tunnel-Type, Tunnel-Medium-Type, Tunnel-Private-Group-Id)", a))
		}
	}
	return errors.Join(errs...)
}

// RADIUS checks passwords by forwarding PAP Access-Requests. Each server
// gets one long-lived UDP socket on which up to 256 requests are in flight
// at once, told apart by identifier (a new socket per request cost a tenth
// of the daemon's CPU in make bench).
type RADIUS struct {
	cfg    RADIUSConfig
	secret []byte
	name   string

	mu    sync.Mutex
	socks map[string]*radiusSock
}

// radiusSock multiplexes requests to one server over one socket.
type radiusSock struct {
	conn    net.Conn
	mu      sync.Mutex
	pending map[byte]chan []byte
	next    byte
	dead    bool
}

// NewRADIUS builds the connector from its JSON config and shared secret.
func NewRADIUS(name, config string, secret secrets.Secret) (*RADIUS, error) {
	var c RADIUSConfig
	if err := parseConfig(name, config, &c); err != nil {
		return nil, err
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("upstream %s: no shared secret", name)
	}
	return &RADIUS{cfg: c, secret: append([]byte(nil), secret...), name: name, socks: map[string]*radiusSock{}}, nil
}

// Close closes the sockets.
func (r *RADIUS) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, s := range r.socks {
		s.conn.Close()
		delete(r.socks, k)
	}
}

// sock returns the server's socket, opening it (and its reader) if needed.
func (r *RADIUS) sock(ctx context.Context, server string) (*radiusSock, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.socks[server]; s != nil {
		s.mu.Lock()
		dead := s.dead
		s.mu.Unlock()
		if !dead {
			return s, nil
		}
		delete(r.socks, server)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, err
	}
	s := &radiusSock{conn: conn, pending: map[byte]chan []byte{}}
	r.socks[server] = s
	go s.read()
	return s, nil
}

func (s *radiusSock) read() {
	buf := make([]byte, radius.MaxPacketLength)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// "connection refused" from an ICMP error only means the
			// server is down right now; a closed socket ends the reader.
			if errors.Is(err, net.ErrClosed) {
				s.mu.Lock()
				s.dead = true
				for id, ch := range s.pending {
					close(ch)
					delete(s.pending, id)
				}
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			for _, ch := range s.pending {
				select {
				case ch <- nil: // wake the waiter: the server refused
				default:
				}
			}
			s.mu.Unlock()
			continue
		}
		if n < 20 {
			continue
		}
		s.mu.Lock()
		ch := s.pending[buf[1]]
		s.mu.Unlock()
		if ch != nil {
			select {
			case ch <- append([]byte(nil), buf[:n]...):
			default: // the waiter already has one to check
			}
		}
	}
}

// reserve takes a free identifier, or reports that all 256 are in use.
func (s *radiusSock) reserve() (byte, chan []byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || len(s.pending) >= 256 {
		return 0, nil, false
	}
	for {
		id := s.next
		s.next++
		if _, busy := s.pending[id]; !busy {
			ch := make(chan []byte, 4)
			s.pending[id] = ch
			return id, ch, true
		}
	}
}

func (s *radiusSock) release(id byte) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// Warnings lists settings the operator should know are weak.
func (r *RADIUS) Warnings() []string {
	if !r.cfg.RequireMessageAuthenticator {
		return []string{"replies are accepted without Message-Authenticator (BlastRADIUS exposure); turn it on once the server sends it"}
	}
	return nil
}

var errReplyForged = errors.New("reply failed verification (wrong shared secret, or forged)")

// Verify sends the password upstream. Reject means ErrBadCredentials (a
// RADIUS server does not say whether the user exists); no verified answer
// from any server within the budget means ErrUnreachable. A retry to the
// same server resends the same packet (same identifier and authenticator,
// RFC 5080 §2.2.1), so the server can see it is one login, not two.
func (r *RADIUS) Verify(ctx context.Context, user string, password secrets.Secret) (Identity, error) {
	if len(password) == 0 || len(password) > 128 {
		return Identity{}, ErrBadCredentials
	}
	pkt, _, err := r.ask(ctx, func(p *radius.Packet) error {
		if err := rfc2865.UserName_SetString(p, user); err != nil {
			return ErrBadCredentials
		}
		if err := rfc2865.UserPassword_Set(p, password); err != nil {
			return ErrBadCredentials
		}
		return nil
	})
	if err != nil {
		return Identity{}, err
	}
	if pkt.Code == radius.CodeAccessReject {
		return Identity{}, ErrBadCredentials
	}
	return Identity{Name: user, Groups: r.groups(pkt), Reply: r.passed(pkt)}, nil
}

// ask sends the Access-Request fill builds to the servers in turn and
// returns the first verified Access-Accept or Access-Reject, with the
// request it answers.
func (r *RADIUS) ask(ctx context.Context, fill func(*radius.Packet) error) (*radius.Packet, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(r.cfg.BudgetMS)*time.Millisecond)
	defer cancel()
	pending := map[string]*radiusAttempt{}
	defer func() {
		for _, a := range pending {
			a.sock.release(a.id)
		}
	}()
	var errs []error
	for n := 0; ctx.Err() == nil && n < 2*len(r.cfg.Servers); n++ {
		server := r.cfg.Servers[n%len(r.cfg.Servers)]
		a := pending[server]
		if a == nil {
			var err error
			if a, err = r.prepare(ctx, server, fill); err != nil {
				if errors.Is(err, ErrBadCredentials) {
					return nil, nil, err
				}
				errs = append(errs, fmt.Errorf("%s: %w", server, err))
				continue
			}
			pending[server] = a
		}
		pkt, err := r.exchange(ctx, a)
		if err == nil || errors.Is(err, ErrUpstreamRefused) {
			return pkt, a.req, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", server, err))
	}
	return nil, nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, r.name, errors.Join(dedupErrors(errs)...))
}

// dedupErrors keeps one of each message, so a silent server is reported
// once, not once per try.
func dedupErrors(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return out
}

// radiusAttempt is one request to one server, kept for retransmission.
type radiusAttempt struct {
	sock    *radiusSock
	id      byte
	replies chan []byte
	req     []byte
}

func (r *RADIUS) prepare(ctx context.Context, server string, fill func(*radius.Packet) error) (*radiusAttempt, error) {
	sock, err := r.sock(ctx, server)
	if err != nil {
		return nil, err
	}
	id, replies, ok := sock.reserve()
	if !ok {
		return nil, errors.New("256 requests already in flight to this server")
	}
	p := radius.New(radius.CodeAccessRequest, r.secret)
	p.Identifier = id
	if err := fill(p); err != nil {
		sock.release(id)
		return nil, err
	}
	_ = rfc2865.NASIdentifier_SetString(p, r.cfg.NASIdentifier)
	_ = rfc2865.ServiceType_Set(p, rfc2865.ServiceType_Value_LoginUser)
	p.Add(rfc2869.MessageAuthenticator_Type, make([]byte, msgauth.Size))
	req, err := p.Encode()
	if err != nil {
		sock.release(id)
		return nil, err
	}
	// Message-Authenticator on every request.
	if err := msgauth.Sign(req, r.secret); err != nil {
		sock.release(id)
		return nil, err
	}
	return &radiusAttempt{sock: sock, id: id, replies: replies, req: req}, nil
}

// exchange sends (or resends) a and waits one timeout for a verified
// Access-Accept or Access-Reject.
func (r *RADIUS) exchange(ctx context.Context, a *radiusAttempt) (*radius.Packet, error) {
	if _, err := a.sock.conn.Write(a.req); err != nil {
		return nil, err
	}
	timer := time.NewTimer(time.Duration(r.cfg.TimeoutMS) * time.Millisecond)
	defer timer.Stop()
	var lastErr error = errors.New("no reply")
	for {
		var resp []byte
		select {
		case <-ctx.Done():
			return nil, lastErr
		case <-timer.C:
			return nil, lastErr
		case b, open := <-a.replies:
			if !open {
				return nil, errors.New("socket closed")
			}
			if b == nil {
				return nil, errors.New("the server refused the packet (nothing listens on that port)")
			}
			resp = b
		}
		// Replies that fail verification are dropped, as if never sent;
		// a genuine one may still come.
		if err := r.verifyReply(resp, a.req); err != nil {
			lastErr = err
			continue
		}
		pkt, err := radius.Parse(resp, r.secret)
		if err != nil {
			lastErr = err
			continue
		}
		switch pkt.Code {
		case radius.CodeAccessAccept, radius.CodeAccessReject:
			return pkt, nil
		case radius.CodeAccessChallenge:
			return nil, fmt.Errorf("%w: the server asked for its own second factor (Access-Challenge), which clinicgate does not relay; turn MFA off for clinicgate's requests on that server", ErrUpstreamRefused)
		default:
			lastErr = fmt.Errorf("unexpected reply code %v", pkt.Code)
		}
	}
}

// verifyReply checks the reply matches the request (identifier), its
// Response Authenticator, and its Message-Authenticator (required unless
// switched off).
func (r *RADIUS) verifyReply(resp, req []byte) error {
	if len(resp) < 20 || resp[1] != req[1] {
		return errors.New("reply to another request")
	}
	length := int(binary.BigEndian.Uint16(resp[2:4]))
	if length < 20 || length > len(resp) {
		return errors.New("malformed reply")
	}
	resp = resp[:length]
	if !radius.IsAuthenticResponse(resp, req, r.secret) {
		return errReplyForged
	}
	switch err := msgauth.VerifyResponse(resp, req[4:20], r.secret); {
	case err == nil:
		return nil
	case errors.Is(err, msgauth.ErrMissing):
		if r.cfg.RequireMessageAuthenticator {
			return errors.New("reply has no Message-Authenticator (required for this upstream)")
		}
		return nil
	case errors.Is(err, msgauth.ErrMalformed):
		return errors.New("malformed reply attributes")
	}
	return errReplyForged
}

// passed picks the reply attributes the settings allow through.
func (r *RADIUS) passed(pkt *radius.Packet) []ReplyAttribute {
	if len(r.cfg.PassAttributes) == 0 {
		return nil
	}
	allowed := map[byte]bool{}
	for _, n := range r.cfg.PassAttributes {
		allowed[PassableAttributes[n]] = true
	}
	var out []ReplyAttribute
	for _, a := range pkt.Attributes {
		if allowed[byte(a.Type)] {
			out = append(out, ReplyAttribute{Type: byte(a.Type), Value: append([]byte(nil), a.Attribute...)})
		}
	}
	return out
}

func (r *RADIUS) groups(pkt *radius.Packet) []string {
	var t radius.Type
	switch r.cfg.GroupAttribute {
	case "Class":
		t = rfc2865.Class_Type
	case "Filter-Id":
		t = rfc2865.FilterID_Type
	default:
		return nil
	}
	var out []string
	for _, a := range pkt.Attributes {
		if a.Type == t {
			// Only text that can be a group name: NPS, for one, puts binary
			// data of its own in Class.
			g := strings.TrimSpace(string(a.Attribute))
			if g != "" && len(g) <= 64 && utf8.ValidString(g) && !strings.ContainsFunc(g, unicode.IsControl) {
				out = append(out, g)
			}
		}
	}
	return out
}
