package eap

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance"
	"github.com/clinicgate/clinicgate/appliance/policy"
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
	// (TLS 1.2) and turns session tickets off. It asks for a client
	// certificate only in EAP-TLS.
	TLS *tls.Config
	// ClientCAs are the trust anchors of EAP-TLS client certificates;
	// EAP-TLS is offered only when they are set. CRLs, when set, gives
	// the revocation lists to check them against (it may reload a file);
	// a list whose signature does not check against the certificate's
	// issuer is ignored, and an error refuses every client certificate.
	ClientCAs *x509.CertPool
	CRLs      func() ([]*x509.RevocationList, error)
	// ServerName is the name the MS-CHAPv2 challenge carries (default
	// "clinicgate").
	ServerName string
	// MaxSessions caps the conversations in progress (default 2048): when
	// full, the oldest is dropped. A handshake half-way holds about 50 KiB
	// (its TLS state and its goroutine's stack; measured with 1,000), so
	// the default bounds a flood of half-open handshakes near 100 MiB. TTL
	// is how long one may take from its first message (default 60 s).
	MaxSessions int
	TTL         time.Duration
	Now         func() time.Time

	once     sync.Once
	tlsCfg   *tls.Config // TTLS and PEAP
	certCfg  *tls.Config // EAP-TLS: asks for the client's certificate
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
			c.ClientCAs, c.VerifyPeerCertificate, c.VerifyConnection = nil, nil, nil
			s.tlsCfg = c
			if s.ClientCAs != nil {
				cc := c.Clone()
				// Any certificate is asked for, and verify checks it, so
				// that a refusal carries its reason (untrusted, expired,
				// revoked). ClientCAs names the anchors in the request.
				cc.ClientAuth = tls.RequireAnyClientCert
				cc.ClientCAs = s.ClientCAs
				cc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
					_, err := s.verifyClientCert(raw)
					return err
				}
				s.certCfg = cc
			}
		}
		if s.ServerName == "" {
			s.ServerName = "clinicgate"
		}
	})
}

// The EAP methods, as a client's policy names them, and their types.
var methodTypes = map[string]byte{policy.EAPTTLS: TypeTTLS, policy.EAPPEAP: TypePEAP, policy.EAPTLS: TypeTLS}

// offered is what a client may use and this server is set up for, in the
// client's order.
func (s *Server) offered(allowed []string) []byte {
	if allowed == nil {
		allowed = policy.AllEAPMethods
	}
	var types []byte
	for _, m := range allowed {
		t, ok := methodTypes[m]
		if !ok || slices.Contains(types, t) {
			continue
		}
		if s.tlsCfg == nil || (t == TypeTLS && s.certCfg == nil) {
			continue
		}
		types = append(types, t)
	}
	return types
}

func (s *Server) configFor(method byte) *tls.Config {
	if method == TypeTLS {
		return s.certCfg
	}
	return s.tlsCfg
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
	// Methods are the EAP methods the client's policy allows, in the
	// order offered (policy.EAPTTLS, EAPPEAP, EAPTLS); nil: all of them,
	// as the policy's default.
	Methods []string
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
	methods []byte // the types this client may use here, in order
	method  byte   // the type offered, once started
	started bool   // the method's Start has gone out
	began   bool   // the peer has sent TLS data: no NAK any more
	tunMu   sync.Mutex
	tun     *tunnel
	closed  bool   // closeTunnel ran: no tunnel may start
	in      []byte // a TLS message being reassembled
	inTotal int
	out     []byte // TLS data still to send in fragments
	frag    int
	timer   *time.Timer // ends the session at its expiry, freeing its TLS goroutine
	sentOut bool        // the first fragment of out has gone
	// failing: an alert went out for this reason; the next answer ends
	// in Failure.
	failing    string
	failReason appliance.Reason
	done       bool

	// Once the handshake is done.
	hsDone  bool
	version uint16
	msk     []byte
	phase   phase
	// The inner method's (PEAP) and the gate's decision, kept until the
	// peer acknowledges the end.
	inner    string
	chal     [16]byte
	msid     byte
	decision appliance.Decision
}

// phase is where a session is after its TLS handshake.
type phase int

const (
	phaseHandshake  phase = iota
	phaseWaitAck          // our last handshake flight is out; the peer's ACK starts the inner method (PEAP)
	phaseIdentity         // PEAP: the inner Identity request is out
	phaseChallenge        // PEAP: the MS-CHAPv2 Challenge is out
	phaseMSSuccess        // PEAP: the MS-CHAPv2 Success request is out
	phaseMSFailure        // PEAP: the MS-CHAPv2 Failure request is out
	phaseResult           // PEAP: the Result TLV (success) is out
	phaseResultFail       // PEAP: the Result TLV (failure) is out
	phaseFinalAck         // EAP-TLS: the Finished or the commitment message is out, the gate accepted
)

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
			return s.refuse(ctx, r, 0, openReason(err), err.Error())
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
		return s.refuse(ctx, r, id, appliance.ReasonBadRequest, err.Error())
	}
	if pkt.Code != CodeResponse {
		return s.refuse(ctx, r, pkt.Identifier, appliance.ReasonBadRequest, fmt.Sprintf("an EAP code %d from the peer; only responses are expected", pkt.Code))
	}
	if s.tlsCfg == nil {
		return s.refuse(ctx, r, pkt.Identifier, appliance.ReasonBadRequest, "EAP is not set up (no server certificate)")
	}
	if r.State == nil {
		if pkt.Type != TypeIdentity {
			return s.refuse(ctx, r, pkt.Identifier, appliance.ReasonBadRequest, fmt.Sprintf("a conversation that starts with EAP type %d instead of an identity", pkt.Type))
		}
		sess, err := s.open(r, string(pkt.Data))
		if err != nil {
			return s.refuse(ctx, r, pkt.Identifier, openReason(err), err.Error())
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.begin(pkt.Identifier, sess.methods[0])
	}
	sess, why := s.lookup(r)
	if sess == nil {
		return s.refuse(ctx, r, pkt.Identifier, appliance.ReasonBadRequest, why)
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

// begin sends the Start of a method (RFC 5216 §2.1.5; PEAP's with version
// 0, the only one clinicgate speaks).
func (sess *session) begin(respID byte, method byte) Reply {
	sess.method, sess.started = method, true
	return sess.request(respID, encodeFrame(flagStart, 0, nil))
}

// step advances one session by one response.
func (s *Server) step(ctx context.Context, r Request, sess *session, pkt Packet) Reply {
	switch {
	case pkt.Type == TypeIdentity:
		if sess.started {
			return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, "an identity in the middle of an EAP conversation")
		}
		// The answer to the Identity request of an EAP-Start.
		sess.outer = string(pkt.Data)
		return sess.begin(pkt.Identifier, sess.methods[0])
	case pkt.Type == TypeNAK:
		// RFC 3748 §5.3.1: only in answer to the method's first request.
		if !sess.started || sess.began {
			return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, "a NAK in the middle of an EAP method")
		}
		for _, t := range pkt.Data {
			if slices.Contains(sess.methods, t) {
				return sess.begin(pkt.Identifier, t)
			}
		}
		return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonMethodNotAllowed,
			fmt.Sprintf("the peer asked for EAP methods %v; this client may use %v here", []byte(pkt.Data), sess.methods))
	case pkt.Type != sess.method:
		return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, fmt.Sprintf("EAP type %d in an EAP conversation of type %d", pkt.Type, sess.method))
	}
	sess.began = true
	if sess.failing != "" {
		// The peer's answer to our alert: whatever it says, it ends here.
		return s.refuseIn(ctx, r, sess, pkt.Identifier, sess.failReason, sess.failing)
	}
	f, err := parseFrame(pkt.Data)
	if err != nil {
		return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, err.Error())
	}
	if sess.method == TypePEAP && f.flags&versionBit != 0 {
		return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, fmt.Sprintf("PEAP version %d; clinicgate speaks version 0", f.flags&versionBit))
	}
	if len(sess.out) > 0 {
		// Sending fragments: the peer must acknowledge each with an
		// empty response (RFC 5216 §2.1.5).
		if len(f.data) != 0 || f.flags&(flagLength|flagMore) != 0 {
			return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, "the peer sent data while it should acknowledge a fragment")
		}
		return sess.sendFragment(pkt.Identifier)
	}
	if len(sess.in) == 0 && f.flags&flagLength != 0 {
		sess.inTotal = f.total
	}
	if len(sess.in)+len(f.data) > maxMessage || (sess.inTotal > 0 && len(sess.in)+len(f.data) > sess.inTotal) {
		return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, fmt.Sprintf("a fragmented TLS message above its announced length or the %d-byte cap", maxMessage))
	}
	sess.in = append(sess.in, f.data...)
	if f.flags&flagMore != 0 {
		return sess.request(pkt.Identifier, encodeFrame(0, 0, nil)) // the ACK
	}
	msg := sess.in
	if sess.inTotal > 0 && len(msg) != sess.inTotal {
		return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, fmt.Sprintf("a TLS message of %d bytes announced as %d", len(msg), sess.inTotal))
	}
	sess.in, sess.inTotal = nil, 0
	if !sess.startTunnel(s.configFor(sess.method)) {
		return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, "an EAP conversation that ended while in progress")
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	res, err := sess.tun.step(sctx, msg)
	cancel()
	if err != nil {
		return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonInternal, err.Error())
	}
	sess.frag = fragmentSize(r.FramedMTU)
	if res.err != nil {
		reason, why := appliance.ReasonBadRequest, "TLS: "+res.err.Error()
		if ce := (*certError)(nil); errors.As(res.err, &ce) {
			reason, why = ce.reason, ce.Error()
		} else if sess.method == TypeTLS && !sess.hsDone && isNoCertificate(res.err) {
			reason = appliance.ReasonCertUntrusted
		}
		if sess.hsDone && len(res.app) > 0 {
			why = "TLS after application data: " + res.err.Error()
		}
		if len(res.out) > 0 && len(res.out) <= sess.frag && (res.out[0] == recordAlert || res.out[0] == recordAppData) {
			// TLS wrote an alert (under TLS 1.3 an encrypted one, in an
			// application data record): send it, so the peer learns why,
			// and end with EAP-Failure once it acknowledges (RFC 5216
			// §2.1.3, RFC 9190 §2.1.3).
			sess.failing, sess.failReason = why, reason
			return sess.request(pkt.Identifier, encodeFrame(flagLength, len(res.out), res.out))
		}
		return s.refuseIn(ctx, r, sess, pkt.Identifier, reason, why)
	}
	if !sess.hsDone {
		st := sess.tun.state
		if st == nil {
			// TLS waits for more of the handshake.
			return sess.send(pkt.Identifier, res.out)
		}
		if err := sess.handshakeDone(st); err != nil {
			return s.refuseIn(ctx, r, sess, pkt.Identifier, appliance.ReasonBadRequest, "TLS keys: "+err.Error())
		}
		switch sess.method {
		case TypeTLS:
			return s.tlsDone(ctx, r, sess, pkt.Identifier, res.out, st)
		case TypePEAP:
			if len(res.out) > 0 || len(res.app) > 0 {
				// TLS 1.2: the Finished goes out, the peer's ACK starts
				// the inner method. (A peer's data before that is refused
				// below.)
				sess.phase = phaseWaitAck
				if len(res.app) == 0 {
					return sess.send(pkt.Identifier, res.out)
				}
			} else {
				// TLS 1.3: the peer's Finished ended the handshake; the
				// inner method starts at once (as hostapd does).
				return s.peapStart(ctx, r, sess, pkt.Identifier, nil)
			}
		}
	}
	switch sess.method {
	case TypeTTLS:
		if len(res.app) == 0 {
			// Our Finished, or nothing to say: the peer's AVPs come next.
			return sess.send(pkt.Identifier, res.out)
		}
		return s.ttlsInner(ctx, r, sess, pkt.Identifier, res.app)
	case TypePEAP:
		return s.peapStep(ctx, r, sess, pkt.Identifier, res.out, res.app)
	default:
		return s.tlsStep(ctx, r, sess, pkt.Identifier, res.out, res.app)
	}
}

// handshakeDone keeps the tunnel's version and derives its MSK.
func (sess *session) handshakeDone(st *tls.ConnectionState) error {
	sess.hsDone, sess.version = true, st.Version
	label, context := labelTLS13, []byte{sess.method}
	if st.Version != tls.VersionTLS13 {
		// RFC 5705 with no context is the TLS 1.2 PRF(master secret,
		// label, client random + server random) of RFC 5281 and RFC 5216.
		// Go gives it only with the Extended Master Secret (RFC 7627),
		// which every current peer offers; without it the conversation is
		// refused.
		label, context = labelEAP12, nil
		if sess.method == TypeTTLS {
			label = labelTTLS12
		}
	}
	msk, err := st.ExportKeyingMaterial(label, context, 128)
	if err != nil {
		return err
	}
	sess.msk = msk[:64]
	return nil
}

// send sends TLS records, fragmented, or an empty request when there are
// none (TLS waits for the peer).
func (sess *session) send(respID byte, out []byte) Reply {
	if len(out) == 0 {
		return sess.request(respID, encodeFrame(0, 0, nil))
	}
	sess.out = out
	return sess.sendFragment(respID)
}

// write sends application data through the tunnel, after what TLS still
// had to send.
func (sess *session) write(respID byte, pending, data []byte) (Reply, error) {
	out, err := sess.tun.write(data)
	if err != nil {
		return Reply{}, err
	}
	return sess.send(respID, append(pending, out...)), nil
}

// ttlsInner hands the inner PAP credentials to the gate.
func (s *Server) ttlsInner(ctx context.Context, r Request, sess *session, id byte, app [][]byte) Reply {
	in, err := parseAVPs(bytes.Join(app, nil))
	if err != nil {
		return s.refuseIn(ctx, r, sess, id, appliance.ReasonBadRequest, err.Error())
	}
	req := s.gateRequest(r, sess, appliance.MethodTTLSPAP, in.user)
	req.Password = in.password
	d, err := s.Gate.Decide(ctx, req)
	return s.end(sess, id, d, err)
}

// gateRequest is the door's request with the method, the inner user and
// the notes of this conversation.
func (s *Server) gateRequest(r Request, sess *session, m appliance.Method, user string) appliance.Request {
	req := r.Base
	req.Method, req.User, req.State = m, user, nil
	req.Notes = append(slices.Clone(req.Notes), sess.note())
	req.TLS = tls.VersionName(sess.version)
	if sess.outer != user && m != appliance.MethodEAPTLS {
		// The gate notes it in the audit, and applies the client's rule.
		req.OuterIdentity = sess.outer
	}
	return req
}

// note names the method and the TLS version for the audit:
// eap_ttls_tls13, eap_peap_tls12, eap_tls_tls13...
func (sess *session) note() string {
	name := map[byte]string{TypeTTLS: "ttls", TypePEAP: "peap", TypeTLS: "tls"}[sess.method]
	if name == "" {
		return "eap"
	}
	if !sess.hsDone {
		return "eap_" + name
	}
	return "eap_" + name + "_" + tlsVersionName(sess.version)
}

// end answers with the gate's decision: EAP-Success and the keys only on
// its Accept.
func (s *Server) end(sess *session, id byte, d appliance.Decision, err error) Reply {
	if err != nil || d.Outcome != appliance.Accept {
		if err == nil && d.Outcome == appliance.Challenge {
			// The gate asks no challenge of an EAP method (a code can
			// only come appended to a TTLS password); should one come,
			// it is refused, never accepted.
			d.Outcome = appliance.Reject
		}
		if err != nil {
			d.Outcome, d.Message = appliance.Reject, appliance.MsgDenied
		}
		return Reply{Outcome: Reject, EAP: Packet{Code: CodeFailure, Identifier: id}.Encode(), Decision: d, Decided: true}
	}
	return Reply{Outcome: Accept, EAP: Packet{Code: CodeSuccess, Identifier: id}.Encode(), MSK: sess.msk, Decision: d, Decided: true}
}

// refuseIn is refuse within a session: the audit names the method.
func (s *Server) refuseIn(ctx context.Context, r Request, sess *session, id byte, reason appliance.Reason, why string) Reply {
	r.Base.Notes = append(slices.Clone(r.Base.Notes), sess.note())
	return s.refuse(ctx, r, id, reason, why)
}

// refuse ends a conversation the EAP layer cannot continue. The gate
// refuses it with Invalid set to the reason, so it is audited like any
// other refusal.
func (s *Server) refuse(ctx context.Context, r Request, id byte, reason appliance.Reason, why string) Reply {
	req := r.Base
	req.Method = appliance.MethodEAP
	req.Invalid = reason
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
	p := Packet{Code: CodeRequest, Identifier: sess.id, Type: sess.method, Data: data}
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
	return sess.request(respID, encodeFrame(flags, total, data))
}

// outFirst reports whether sess.out has not started going out.
func (sess *session) outFirst() bool { return !sess.sentOut }

// TLS record types (RFC 8446 §5.1).
const (
	recordAlert   = 21
	recordAppData = 23
)

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

var errNoMethod = errors.New("none of this client's EAP methods is set up here (EAP-TLS needs trust anchors)")

func openReason(err error) appliance.Reason {
	if errors.Is(err, errNoMethod) {
		return appliance.ReasonMethodNotAllowed
	}
	return appliance.ReasonInternal
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
		created: now, expires: now.Add(s.TTL), outer: identity, methods: s.offered(r.Methods),
	}
	if len(sess.methods) == 0 {
		return nil, errNoMethod
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
