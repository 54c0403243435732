package eap

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
)

// Decider is the gate, as the EAP server sees it.
type Decider interface {
	Decide(ctx context.Context, req appliance.Request) (appliance.Decision, error)
}

// Server answers EAP conversations carried in RADIUS. Set the fields, then
// call Handle for each Access-Request that carries EAP-Message.
type Server struct {
	Gate Decider
	// TLS holds the server certificate; Server sets the minimum version
	// (TLS 1.2), turns session tickets off and never asks for a client
	// certificate.
	TLS *tls.Config
	// MaxSessions caps the conversations in progress (default 2048): when
	// full, the oldest is dropped. A handshake half-way holds about 50 KiB
	// (its TLS state and its goroutine's stack; measured with 1,000), so
	// the default bounds a flood of half-open handshakes near 100 MiB. TTL
	// is how long one may take from its first message (default 60 s).
	MaxSessions int
	TTL         time.Duration
	Now         func() time.Time

	once     sync.Once
	tlsCfg   *tls.Config
	mu       sync.Mutex
	sessions map[string]*session
	order    []*session // in the order opened, for eviction; may hold ended ones
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.MaxSessions <= 0 {
			s.MaxSessions = 2048
		}
		if s.TTL <= 0 {
			s.TTL = 60 * time.Second
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		s.sessions = map[string]*session{}
		if s.TLS != nil {
			c := s.TLS.Clone()
			c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
			// No resumption: every conversation runs the inner
			// authentication, so TLS 1.3 needs no protected success
			// indication (RFC 9190), which RFC 9427 asks of TTLS only when
			// a resumed session skips the inner authentication.
			c.SessionTicketsDisabled = true
			c.ClientAuth = tls.NoClientCert
			s.tlsCfg = c
		}
	})
}

// Request is one Access-Request's EAP part and what the door knows of it.
type Request struct {
	// Base is the request as the door built it: door, client, source,
	// Calling-Station-Id, NAS, notes. User is the outer identity's
	// User-Name; the gate gets the inner one.
	Base      appliance.Request
	EAP       []byte // the EAP-Message attributes, joined
	State     []byte // nil on a conversation's first message
	FramedMTU int    // 0: not sent
}

// Outcome is what the door answers.
type Outcome int

const (
	Drop      Outcome = iota // no answer: a stale or duplicate message
	Challenge                // Access-Challenge with EAP and State
	Accept                   // the gate's Accept: EAP-Success and the MPPE keys
	Reject                   // EAP-Failure
)

// Reply is the EAP server's answer.
type Reply struct {
	Outcome Outcome
	EAP     []byte
	State   []byte // with Challenge
	MSK     []byte // with Accept: 64 bytes
	// Decision is the gate's, when this message ended in one; Decided
	// says so. A Reject without a decision carries none.
	Decision appliance.Decision
	Decided  bool
}

// session is one conversation in progress.
type session struct {
	mu      sync.Mutex
	state   string
	client  string
	source  netip.Addr
	station string
	created time.Time
	expires time.Time
	id      byte   // Identifier of the last EAP-Request sent
	outer   string // the outer identity
	started bool   // the EAP-TTLS Start has gone out
	tunMu   sync.Mutex
	tun     *tunnel
	closed  bool   // closeTunnel ran: no tunnel may start
	in      []byte // a TLS message being reassembled
	inTotal int
	out     []byte // TLS data still to send in fragments
	frag    int
	timer   *time.Timer // ends the session at its expiry, freeing its TLS goroutine
	sentOut bool        // the first fragment of out has gone
	failing string      // an alert went out for this reason; the next answer ends in Failure
	done    bool
}

// Len is the number of conversations in progress.
func (s *Server) Len() int {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Handle answers one EAP message.
func (s *Server) Handle(ctx context.Context, r Request) Reply {
	s.init()
	if len(r.EAP) == 0 && r.State == nil && s.tlsCfg != nil {
		// EAP-Start (RFC 3579): the NAS asks the server to begin,
		// with an EAP-Request/Identity.
		sess, err := s.open(r, "")
		if err != nil {
			return s.refuse(ctx, r, 0, err.Error())
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		sess.id = 1
		p := Packet{Code: CodeRequest, Identifier: sess.id, Type: TypeIdentity}
		return Reply{Outcome: Challenge, EAP: p.Encode(), State: []byte(sess.state)}
	}
	pkt, err := Parse(r.EAP)
	if err != nil {
		id := byte(0)
		if len(r.EAP) > 1 {
			id = r.EAP[1]
		}
		return s.refuse(ctx, r, id, err.Error())
	}
	if pkt.Code != CodeResponse {
		return s.refuse(ctx, r, pkt.Identifier, fmt.Sprintf("an EAP code %d from the peer; only responses are expected", pkt.Code))
	}
	if s.tlsCfg == nil {
		return s.refuse(ctx, r, pkt.Identifier, "EAP is not set up (no server certificate)")
	}
	if r.State == nil {
		if pkt.Type != TypeIdentity {
			return s.refuse(ctx, r, pkt.Identifier, fmt.Sprintf("a conversation that starts with EAP type %d instead of an identity", pkt.Type))
		}
		sess, err := s.open(r, string(pkt.Data))
		if err != nil {
			return s.refuse(ctx, r, pkt.Identifier, err.Error())
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		sess.started = true
		return sess.request(pkt.Identifier, encodeTTLS(flagStart, 0, nil))
	}
	sess, why := s.lookup(r)
	if sess == nil {
		return s.refuse(ctx, r, pkt.Identifier, why)
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.done {
		return Reply{Outcome: Drop}
	}
	if pkt.Identifier != sess.id {
		// RFC 3748 §4.1: a response to an earlier request is discarded;
		// the NAS's retransmits are answered from the door's reply cache.
		return Reply{Outcome: Drop}
	}
	reply := s.step(ctx, r, sess, pkt)
	if reply.Outcome == Accept || reply.Outcome == Reject {
		s.close(sess)
	}
	return reply
}

// step advances one session by one response.
func (s *Server) step(ctx context.Context, r Request, sess *session, pkt Packet) Reply {
	switch pkt.Type {
	case TypeIdentity:
		if sess.started {
			return s.refuse(ctx, r, pkt.Identifier, "an identity in the middle of an EAP-TTLS conversation")
		}
		// The answer to the Identity request of an EAP-Start.
		sess.outer, sess.started = string(pkt.Data), true
		return sess.request(pkt.Identifier, encodeTTLS(flagStart, 0, nil))
	case TypeNAK:
		if slices.Contains(pkt.Data, TypeTTLS) {
			return sess.request(pkt.Identifier, encodeTTLS(flagStart, 0, nil))
		}
		return s.refuse(ctx, r, pkt.Identifier, fmt.Sprintf("the peer asked for EAP methods %v; clinicgate offers EAP-TTLS only so far", []byte(pkt.Data)))
	case TypeTTLS:
	default:
		return s.refuse(ctx, r, pkt.Identifier, fmt.Sprintf("EAP type %d in an EAP-TTLS conversation", pkt.Type))
	}
	if sess.failing != "" {
		// The peer's answer to our alert: whatever it says, it ends here.
		return s.refuse(ctx, r, pkt.Identifier, sess.failing)
	}
	f, err := parseTTLS(pkt.Data)
	if err != nil {
		return s.refuse(ctx, r, pkt.Identifier, err.Error())
	}
	if len(sess.out) > 0 {
		// Sending fragments: the peer must acknowledge each with an
		// empty EAP-TTLS response (RFC 5216 §2.1.5).
		if len(f.data) != 0 || f.flags&(flagLength|flagMore) != 0 {
			return s.refuse(ctx, r, pkt.Identifier, "the peer sent data while it should acknowledge a fragment")
		}
		return sess.sendFragment(pkt.Identifier)
	}
	if len(sess.in) == 0 && f.flags&flagLength != 0 {
		sess.inTotal = f.total
	}
	if len(sess.in)+len(f.data) > maxMessage || (sess.inTotal > 0 && len(sess.in)+len(f.data) > sess.inTotal) {
		return s.refuse(ctx, r, pkt.Identifier, fmt.Sprintf("a fragmented TLS message above its announced length or the %d-byte cap", maxMessage))
	}
	sess.in = append(sess.in, f.data...)
	if f.flags&flagMore != 0 {
		return sess.request(pkt.Identifier, encodeTTLS(0, 0, nil)) // the ACK
	}
	msg := sess.in
	if sess.inTotal > 0 && len(msg) != sess.inTotal {
		return s.refuse(ctx, r, pkt.Identifier, fmt.Sprintf("a TLS message of %d bytes announced as %d", len(msg), sess.inTotal))
	}
	sess.in, sess.inTotal = nil, 0
	if !sess.startTunnel(s.tlsCfg) {
		return s.refuse(ctx, r, pkt.Identifier, "an EAP conversation that ended while in progress")
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	out, res, err := sess.tun.step(sctx, msg)
	cancel()
	if err != nil {
		return s.refuse(ctx, r, pkt.Identifier, err.Error())
	}
	sess.frag = fragmentSize(r.FramedMTU)
	if res == nil {
		sess.out = out
		if len(out) == 0 {
			// TLS waits for the peer and has nothing to say: ask for more.
			return sess.request(pkt.Identifier, encodeTTLS(0, 0, nil))
		}
		return sess.sendFragment(pkt.Identifier)
	}
	if res.err != nil {
		why := "TLS: " + res.err.Error()
		if len(out) > 0 && len(out) <= sess.frag && out[0] == recordAlert {
			// TLS wrote an alert: send it, so the peer learns why, and
			// end with EAP-Failure once it acknowledges (RFC 5216 §2.1.3).
			sess.failing = why
			return sess.request(pkt.Identifier, encodeTTLS(flagLength, len(out), out))
		}
		return s.refuse(ctx, r, pkt.Identifier, why)
	}
	return s.decide(ctx, r, sess, pkt.Identifier, res)
}

// decide hands the inner credentials to the gate.
func (s *Server) decide(ctx context.Context, r Request, sess *session, id byte, res *tunnelResult) Reply {
	req := r.Base
	req.Method = appliance.MethodTTLSPAP
	req.User = res.inner.user
	req.Password = res.inner.password
	req.State = nil
	req.Notes = append(slices.Clone(req.Notes), "eap_ttls_"+tlsVersionName(res.version))
	if sess.outer != res.inner.user {
		req.Notes = append(req.Notes, "outer_identity="+sanitize(sess.outer))
	}
	d, err := s.Gate.Decide(ctx, req)
	if err != nil || d.Outcome != appliance.Accept {
		if err == nil && d.Outcome == appliance.Challenge {
			// The gate asks no challenge of a TTLS password (it is
			// append-only); should one come, it is refused, never accepted.
			d.Outcome = appliance.Reject
		}
		if err != nil {
			d.Outcome, d.Message = appliance.Reject, appliance.MsgDenied
		}
		return Reply{Outcome: Reject, EAP: Packet{Code: CodeFailure, Identifier: id}.Encode(), Decision: d, Decided: true}
	}
	return Reply{Outcome: Accept, EAP: Packet{Code: CodeSuccess, Identifier: id}.Encode(), MSK: res.msk, Decision: d, Decided: true}
}

// refuse ends a conversation the EAP layer cannot continue. The gate
// refuses it with Invalid set, so it is audited like any other refusal.
func (s *Server) refuse(ctx context.Context, r Request, id byte, why string) Reply {
	req := r.Base
	req.Method = appliance.MethodEAP
	req.Invalid = appliance.ReasonBadRequest
	req.State = nil
	req.Notes = append(slices.Clone(req.Notes), "eap: "+sanitize(why))
	d, err := s.Gate.Decide(ctx, req)
	if err != nil {
		d.Outcome, d.Message = appliance.Reject, appliance.MsgDenied
	}
	d.Outcome = appliance.Reject // whatever happened, never an Accept here
	return Reply{Outcome: Reject, EAP: Packet{Code: CodeFailure, Identifier: id}.Encode(), Decision: d, Decided: true}
}

// request builds the next EAP-Request of the session.
func (sess *session) request(respID byte, data []byte) Reply {
	sess.id = respID + 1
	p := Packet{Code: CodeRequest, Identifier: sess.id, Type: TypeTTLS, Data: data}
	return Reply{Outcome: Challenge, EAP: p.Encode(), State: []byte(sess.state)}
}

// sendFragment sends the next piece of sess.out: the first with its total
// length, every one but the last with the M flag.
func (sess *session) sendFragment(respID byte) Reply {
	n := min(len(sess.out), sess.frag)
	var flags byte
	total := 0
	if sess.outFirst() {
		flags, total = flagLength, len(sess.out)
	}
	if n < len(sess.out) {
		flags |= flagMore
	}
	data := sess.out[:n]
	sess.out = sess.out[n:]
	if len(sess.out) == 0 {
		sess.out = nil
	}
	sess.sentOut = len(sess.out) > 0
	return sess.request(respID, encodeTTLS(flags, total, data))
}

// outFirst reports whether sess.out has not started going out.
func (sess *session) outFirst() bool { return !sess.sentOut }

// recordAlert is the TLS record type of an alert (RFC 8446 §5.1).
const recordAlert = 21

// fragmentSize is how much TLS data one EAP-Request carries: at most 1000
// bytes, less when the NAS's Framed-MTU says so (EAP header, flags and
// length take 10 bytes).
func fragmentSize(mtu int) int {
	n := 1000
	if mtu > 0 && mtu-10 < n {
		n = max(mtu-10, 64)
	}
	return n
}

// open starts a conversation. When the table is full, the oldest goes.
func (s *Server) open(r Request, identity string) (*session, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	now := s.Now()
	sess := &session{
		state: string(b[:]), client: r.Base.Client.Name, source: r.Base.Source, station: r.Base.Device,
		created: now, expires: now.Add(s.TTL), outer: identity,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The oldest goes first. order holds the sessions as they were opened;
	// one that has ended since is skipped (and compacted away), so a new
	// conversation costs O(1) however full the table is.
	for len(s.sessions) >= s.MaxSessions && len(s.order) > 0 {
		old := s.order[0]
		s.order[0] = nil
		s.order = s.order[1:]
		if s.sessions[old.state] == old {
			delete(s.sessions, old.state)
			old.closeTunnel()
		}
	}
	if len(s.order) >= 2*s.MaxSessions {
		s.order = slices.DeleteFunc(s.order, func(x *session) bool { return s.sessions[x.state] != x })
	}
	s.order = append(s.order, sess)
	s.sessions[sess.state] = sess
	// A handshake abandoned half-way must not keep its goroutine and
	// buffers until another conversation happens to start.
	sess.timer = time.AfterFunc(s.TTL, func() { s.expire(sess) })
	return sess, nil
}

// lookup finds the conversation a State names, if it belongs to this NAS
// and station and has not expired.
func (s *Server) lookup(r Request) (*session, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[string(r.State)]
	switch {
	case !ok:
		return nil, "an unknown or finished EAP conversation (State)"
	case !s.Now().Before(sess.expires):
		delete(s.sessions, sess.state)
		sess.closeTunnel()
		return nil, "an EAP conversation that took longer than " + s.TTL.String()
	case sess.client != r.Base.Client.Name || sess.source != r.Base.Source || sess.station != r.Base.Device:
		// Not deleted: the rightful peer may still finish it.
		return nil, "a State issued to another NAS or station"
	}
	return sess, ""
}

// expire drops a session whose time is up. It does not wait for sess.mu:
// closing the tunnel ends a step in progress, which then fails.
func (s *Server) expire(sess *session) {
	s.mu.Lock()
	if s.sessions[sess.state] == sess {
		delete(s.sessions, sess.state)
	}
	s.mu.Unlock()
	sess.closeTunnel()
}

func (s *Server) close(sess *session) {
	sess.done = true
	s.mu.Lock()
	if s.sessions[sess.state] == sess {
		delete(s.sessions, sess.state)
	}
	s.mu.Unlock()
	sess.closeTunnel()
}

// startTunnel starts the TLS goroutine once, unless the session has been
// closed meanwhile.
func (sess *session) startTunnel(cfg *tls.Config) bool {
	sess.tunMu.Lock()
	defer sess.tunMu.Unlock()
	if sess.closed {
		return false
	}
	if sess.tun == nil {
		sess.tun = startTunnel(cfg)
	}
	return true
}

// closeTunnel ends the session's TLS goroutine. sess.tun is set under
// sess.mu, which expire does not hold; tunMu guards the pointer.
func (sess *session) closeTunnel() {
	sess.tunMu.Lock()
	defer sess.tunMu.Unlock()
	sess.closed = true
	if sess.timer != nil {
		sess.timer.Stop()
	}
	if sess.tun != nil {
		sess.tun.close()
	}
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "tls12"
	case tls.VersionTLS13:
		return "tls13"
	}
	return "tls"
}

// sanitize keeps what a peer sent from writing control characters or
// unbounded text into the audit.
func sanitize(s string) string {
	b := []rune{}
	for _, c := range s {
		if len(b) >= 128 {
			break
		}
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}
