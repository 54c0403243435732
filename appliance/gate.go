// Package appliance is clinicgate's core: the one decision pipeline every
// door (RADIUS, LDAP) calls, and the admin operations the CLI and the
// console share.
//
// It imports no door and no user interface. Doors translate their wire
// format into a Request, call Gate.Decide, and translate the Decision back;
// they hold no policy of their own.
package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/directory"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
	"github.com/clinicgate/clinicgate/internal/reload"
)

// Door names the protocol a request came in by.
type Door string

const (
	DoorRADIUS Door = "radius"
	DoorLDAP   Door = "ldap"
)

// Method is how the password travelled.
type Method string

const (
	MethodPAP    Method = "pap"
	MethodCHAP   Method = "chap"
	MethodMSCHAP Method = "mschap"
	MethodEAP    Method = "eap"
	// MethodTTLSPAP is a PAP password carried inside an EAP-TTLS tunnel
	// (RFC 5281): checked like PAP, but with no RADIUS challenge round,
	// so a code can only come appended to the password.
	MethodTTLSPAP Method = "ttls-pap"
	// MethodMSCHAPv2 is an MS-CHAPv2 response (RFC 2759) in RADIUS
	// attributes (RFC 2548), as VPN gateways send it; MethodPEAP is one
	// carried by EAP-MSCHAPv2 inside a PEAPv0 tunnel. Either is checked
	// against a kept NT hash or relayed to a RADIUS upstream (see
	// Request.MSCHAP), and neither can carry a code.
	MethodMSCHAPv2 Method = "mschapv2"
	MethodPEAP     Method = "peap-mschapv2"
	// MethodEAPTLS is a client certificate the EAP server verified against
	// the site's trust anchors (see Request.Cert). No password is involved.
	MethodEAPTLS   Method = "eap-tls"
	MethodNone     Method = "none"
	MethodLDAPBind Method = "ldap-bind"
)

// MSCHAPv2 is an MS-CHAPv2 response for the gate to verify (RFC 2759).
type MSCHAPv2 struct {
	AuthenticatorChallenge [16]byte
	PeerChallenge          [16]byte
	NTResponse             [24]byte
	// Ident is the MS-CHAP2-Response's Ident, echoed in MS-CHAP2-Success.
	Ident byte
	// Name is the user name the peer hashed into its response, exactly as
	// sent (it may carry a DOMAIN\ prefix that Request.User has lost).
	Name string
}

// MSCHAPResult proves to the peer that the server knew the password.
type MSCHAPResult struct {
	// AuthenticatorResponse is "S=" and 40 hex digits (RFC 2759 §8.7).
	AuthenticatorResponse string
	// RecvKey and SendKey are the MPPE keys (RFC 3079, 16 bytes each), for
	// MS-CHAPv2 without EAP; a PEAP tunnel's keys come from its TLS.
	RecvKey, SendKey []byte
}

// Certificate is a client certificate the EAP server has verified: its
// chain up to one of the site's trust anchors, its dates and, where a CRL
// is configured, its revocation. The gate maps it to a user.
type Certificate struct {
	Fingerprint string // SHA-256, in selfcert's form
	Serial      string // hex
	Subject     string // the subject's common name
	Issuer      string // the issuer's common name
	UPNs        []string
	Emails      []string
	NotAfter    time.Time
}

// Outcome is a decision's verdict.
type Outcome string

const (
	Reject    Outcome = "reject"
	Accept    Outcome = "accept"
	Challenge Outcome = "challenge"
)

// MaxUserName is the longest user name accepted, in bytes.
const MaxUserName = 253

// Request is one login question, as a door understood it.
type Request struct {
	Door     Door
	Client   store.Client
	User     string
	Password secrets.Secret // PAP password or challenge answer
	Method   Method
	State    []byte // RADIUS State of a challenge being answered
	Device   string // Calling-Station-Id as sent
	Source   netip.Addr
	NAS      string // NAS-Identifier or NAS-IP-Address, for the audit
	// Invalid, when set by the door, refuses the request with that reason
	// (for input the door could decode enough to answer, but not accept).
	Invalid Reason
	// Notes are the door's observations for the audit (for example
	// "message_authenticator_absent").
	Notes []string
	// Plaintext is set by the LDAP door for a bind that did not come over
	// TLS; the client's policy decides whether that is refused.
	Plaintext bool
	// MSCHAP is set with MethodMSCHAPv2 and MethodPEAP; Cert with
	// MethodEAPTLS. Password is then empty.
	MSCHAP *MSCHAPv2
	Cert   *Certificate
	// TLS is the TLS version of an EAP method's tunnel ("TLS 1.3"), for
	// the decision's story.
	TLS string
	// Async, set by a door that can answer later (the RADIUS door), lets
	// Decide return a Pending decision instead of waiting for a push.
	Async bool
	// OuterIdentity is an EAP conversation's outer identity, when it
	// differs from User (the inner one); the client's policy decides
	// whether that is allowed, and the audit shows both.
	OuterIdentity string
}

// Attributes are what an Accept grants.
type Attributes struct {
	VLAN           int
	SessionTimeout int // seconds; 0: none
	Class          string
	// FilterID is a Filter-Id (RFC 2865 §5.11): a role name, for
	// controllers that place a station by role rather than by VLAN.
	FilterID string
}

// Decision is the gate's answer.
type Decision struct {
	Outcome    Outcome
	Reason     Reason
	Message    string // safe to show the person logging in
	State      []byte // with Challenge: to send back with the code
	User       string // the canonical user name, once verified
	Groups     []string
	Attributes Attributes
	// Passthrough are upstream reply attributes to add (the door drops any
	// of a type it already sends from Attributes).
	Passthrough []upstream.ReplyAttribute
	// BindAccount: the name of an LDAP bind was a bind account's (an
	// EHR's search account), not a person's; it may search, nothing more.
	BindAccount bool
	// MSCHAP is set on the Accept of an MS-CHAPv2 request.
	MSCHAP   *MSCHAPResult
	AuditSeq int64
	Steps    []Step
	Notes    []string
	// Pending, with an Async request, is a decision still waiting on a
	// push: the Decision itself is then a Reject (fail closed for a door
	// that ignores it), and Pending's Result is the real one.
	Pending *Pending
}

// Step is one stage of the pipeline and what it found, for "why did this
// login fail?".
type Step struct {
	Stage  string `json:"stage"`
	Result string `json:"result"`
}

// Config holds the gate's dependencies.
type Config struct {
	Store     *store.Store
	Audit     *audit.Log
	Hasher    *passwd.Hasher
	Upstreams map[string]upstream.Verifier // by name; "local" at least
	// Registry, when set, is asked first for upstreams by name (the
	// daemon's upstream.Registry); Upstreams then serves only "local".
	Registry UpstreamSource
	// Directories finds the LDAP upstream of the LDAP door's proxy mode
	// (the daemon's upstream.Registry); nil: proxy mode cannot search or
	// resolve DNs, and says so.
	Directories directory.Upstreams
	Logger      *slog.Logger
	Metrics     *Metrics // optional
	Now         func() time.Time
	Rand        io.Reader // challenge State values; nil: crypto/rand
	// MaxChallenges bounds the pending-challenge table (default 4096).
	MaxChallenges int
	// Providers finds push MFA providers by name (push.go); nil: built
	// from the store's mfa_providers.
	Providers ProviderSource
}

// UpstreamSource finds a connector by name.
type UpstreamSource interface {
	Lookup(ctx context.Context, name string) (upstream.Verifier, error)
}

// Gate decides logins. It is safe for concurrent use. Close stops its
// background work and waits for it.
type Gate struct {
	store      *store.Store
	audit      *audit.Log
	hasher     *passwd.Hasher
	upstreams  map[string]upstream.Verifier
	registry   UpstreamSource
	cache      *cacheQueue
	site       *reload.Value[Site]
	localDir   *directory.Store    // the LDAP door's directory mode
	proxyUps   directory.Upstreams // the LDAP door's proxy mode
	log        *slog.Logger
	metrics    *Metrics
	now        func() time.Time
	challenges *challenges
	remembered *remembered
	repeat     *repeatLogins
	// bindThrottle slows wrong bind-account secrets per source;
	// loginThrottle blocks a source that fails a user's logins
	// (throttle.go).
	bindThrottle  *throttle
	loginThrottle *throttle
	// providers and pushes are push MFA's (push.go).
	providers ProviderSource
	pushes    *pushes
}

// NewGate builds a Gate, refusing missing dependencies.
func NewGate(c Config) (*Gate, error) {
	switch {
	case c.Store == nil:
		return nil, errors.New("gate: no store")
	case c.Audit == nil:
		return nil, errors.New("gate: no audit log")
	case c.Hasher == nil:
		return nil, errors.New("gate: no password hasher")
	case c.Upstreams["local"] == nil:
		return nil, errors.New("gate: no local upstream")
	case c.Logger == nil:
		return nil, errors.New("gate: no logger")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxChallenges <= 0 {
		c.MaxChallenges = 4096
	}
	g := &Gate{
		store: c.Store, audit: c.Audit, hasher: c.Hasher, upstreams: c.Upstreams, registry: c.Registry,
		log: c.Logger, metrics: c.Metrics, now: c.Now,
		localDir: directory.NewStore(c.Store, c.Now, c.Logger), proxyUps: c.Directories,
		challenges:    newChallenges(c.MaxChallenges, c.Rand),
		remembered:    newRemembered(),
		repeat:        newRepeatLogins(),
		bindThrottle:  newThrottle(),
		loginThrottle: newThrottle(),
		providers:     c.Providers,
		pushes:        newPushes(),
	}
	if g.providers == nil {
		g.providers = &storeProviders{st: c.Store, m: map[string]builtProvider{}}
	}
	// Site settings are read at most once a second: a change by the CLI
	// or the console applies within a second. A failed read fails the
	// decision (closed) rather than answering from old settings.
	g.site = reload.New(time.Second, c.Now, func(ctx context.Context, _ Site, _ bool) (Site, error) {
		return g.loadSite(ctx)
	})
	g.cache = startCacheQueue(g, 32)
	return g, nil
}

// Close stops the gate's background work and returns once it has
// finished: a verified password being hashed for the credential cache is
// stored first, and the ones still queued are dropped along with the older
// verifiers they were to replace. Decisions made after Close never queue
// one. Close may be called more than once.
func (g *Gate) Close() {
	g.cache.close()
	g.pushes.close()
}

func (g *Gate) lookupUpstream(ctx context.Context, name string) (upstream.Verifier, error) {
	if v := g.upstreams[name]; v != nil {
		return v, nil
	}
	if g.registry != nil {
		return g.registry.Lookup(ctx, name)
	}
	return nil, fmt.Errorf("no upstream named %q is configured", name)
}

// run is one decision in progress.
type run struct {
	req  *Request
	d    *Decision
	site Site
	now  time.Time
	code secrets.Secret // MFA code, from the append form or a challenge answer
	user store.User
	// forceMFA demands a second factor whatever the policy says (an
	// acceptance from the credential cache).
	forceMFA bool
	// passthrough are the upstream's reply attributes, granted on Accept.
	passthrough []upstream.ReplyAttribute
	// mschap is the proof and keys of a verified MS-CHAPv2 response,
	// granted on Accept.
	mschap *MSCHAPResult
	// quarantine, set when the device rule failed on a client that
	// quarantines, replaces the Accept's VLAN and Filter-Id.
	quarantine *Attributes

	// answer is the pending challenge this request answers (its RADIUS
	// State). The first round verified the password, so the password
	// stage passes it by and the mfa stage checks the code it carries.
	answer *challenge
	// verified is whom the upstream vouched for, set by the password
	// stage for the account stage; typed is the local record the name as
	// typed found, if any; password is the one verified, without an
	// appended code.
	verified *upstream.Identity
	typed    *store.User
	password secrets.Secret

	// hold is a push the request waits on after the mfa stage (push.go);
	// fellBack: the push provider was unreachable and the client falls
	// back to TOTP.
	hold     *hold
	fellBack bool
}

func (r *run) step(stage, result string) {
	r.d.Steps = append(r.d.Steps, Step{Stage: stage, Result: result})
}

// refuse sets a rejection and stops the run; msg must be one of the Msg
// constants.
func (r *run) refuse(reason Reason, msg string) verdict {
	r.d.Outcome, r.d.Reason, r.d.Message = Reject, reason, msg
	return stop
}

// Decide answers one login. A refusal is a Decision with a nil error; a
// non-nil error means the appliance could not decide (the Decision is then
// a Reject with ReasonInternal, and the door must fail closed).
func (g *Gate) Decide(ctx context.Context, req Request) (Decision, error) {
	start := g.now()
	// Password hashes waiting for a slot take turns by source, so one NAS
	// flooding logins does not hold up another's.
	ctx = passwd.WithSource(ctx, req.Source.String())
	// Fail closed by construction: a Reject until every stage has passed.
	d := Decision{Outcome: Reject, Reason: ReasonInternal, Message: MsgDenied}
	d.Notes = append(d.Notes, req.Notes...)
	r := &run{req: &req, d: &d, now: start}
	stages, err := g.choose(ctx, r)
	if err != nil {
		return g.finish(ctx, r, err)
	}
	err = g.walk(ctx, r, stages)
	if r.hold != nil && err == nil {
		// A push is on its way: the decision is finished (and audited)
		// when it completes or the budget is spent.
		p := g.newPending(r)
		if !req.Async {
			return p.Result()
		}
		return Decision{Outcome: Reject, Reason: ReasonInternal, Message: MsgDenied, Pending: p}, nil
	}
	return g.finish(ctx, r, err)
}

// choose picks the run's pipeline: an LDAP bind's name is resolved first
// (ldapbind.go), and a bind account takes bindPipeline; every other
// request takes pipeline.
func (g *Gate) choose(ctx context.Context, r *run) ([]stage, error) {
	if r.req.Door != DoorLDAP || r.req.Method != MethodLDAPBind || r.req.Invalid != "" {
		return pipeline, nil
	}
	return g.resolveBind(ctx, r)
}

// pipeline is every login's path through the gate, top to bottom. A stage
// passes the run on, or stops it with the decision made (a refusal, or a
// challenge for a code); a run that passes every stage is accepted. A new
// method of checking someone (EAP, push MFA, device posture) is a stage
// here or a branch inside one, never a path around the list.
var pipeline = []stage{
	{"request", (*Gate).checkRequest},      // well-formed, a method the gate checks, TLS where required
	{"client", (*Gate).loadSettings},       // the client's policy, the site settings
	{"challenge", (*Gate).resumeChallenge}, // with a State: whom the first round verified
	{"password", (*Gate).firstFactor},      // the upstream verifies; failmode cached: a recently verified password
	{"account", (*Gate).account},           // the local record of whom the upstream vouched for
	{"posture", (*Gate).posture},           // account state, allowed hours, groups, device
	{"mfa", (*Gate).secondFactor},          // a code checked, remembered, or asked for in a challenge
	{"authorize", (*Gate).authorize},       // groups to reply attributes, session limits
}

// verdict is what a stage tells the walker.
type verdict int

const (
	pass verdict = iota // this stage is satisfied; go on to the next
	stop                // the decision is made (a refusal or a challenge)
)

// stage is one step of a pipeline. Each records its findings with
// run.step, so the audit tells why a login failed.
type stage struct {
	name string
	do   func(g *Gate, ctx context.Context, r *run) (verdict, error)
}

// walk runs stages in order. The decision is Accept only when every stage
// passed; until then it is whatever the stopping stage set, a Reject by
// default. An error stops the walk; finish turns it into a Reject.
func (g *Gate) walk(ctx context.Context, r *run, stages []stage) error {
	for _, s := range stages {
		steps := len(r.d.Steps)
		v, err := s.do(g, ctx, r)
		if err != nil {
			return err
		}
		if v == pass && (r.d.Outcome != Reject || r.d.Reason != ReasonInternal) {
			// A stage that decided yet said pass is a fault; what it
			// decided stands rather than an Accept.
			v = stop
		}
		if v == stop {
			if len(r.d.Steps) == steps {
				// Every stop says where it happened.
				r.step(s.name, "stopped")
			}
			return nil
		}
	}
	r.d.Outcome, r.d.Reason, r.d.Message = Accept, ReasonOK, ""
	return nil
}

// finish audits a decision, counts it and logs it. err is the pipeline's
// own error: with it, or without an audit entry, the decision is a Reject.
func (g *Gate) finish(ctx context.Context, r *run, err error) (Decision, error) {
	d, req := r.d, r.req
	if err != nil {
		d.Outcome, d.Reason, d.Message, d.State = Reject, ReasonInternal, MsgDenied, nil
		d.Attributes, d.MSCHAP = Attributes{}, nil
		r.step("error", err.Error())
	}
	seq, aerr := g.audit.Append(ctx, g.entry(r))
	if aerr != nil {
		// No decision without its audit entry.
		d.Outcome, d.Reason, d.Message, d.State = Reject, ReasonInternal, MsgDenied, nil
		d.Attributes, d.MSCHAP = Attributes{}, nil
		err = errors.Join(err, aerr)
	}
	d.AuditSeq = seq
	if g.metrics != nil {
		g.metrics.Decisions.WithLabelValues(string(req.Door), string(d.Outcome), string(d.Reason)).Inc()
		g.metrics.Latency.WithLabelValues(string(req.Door), string(d.Outcome)).Observe(g.now().Sub(r.now).Seconds())
	}
	// The audit entry is the record of a decision (and the forwarded
	// copy its syslog line). The journal gets one only at debug level,
	// or when something failed: a line per login cost a write and 5 % of
	// a proxied request's CPU, and buried the daemon's own messages.
	lvl := slog.LevelDebug
	if err != nil {
		lvl = slog.LevelError
	}
	if g.log.Enabled(ctx, lvl) {
		attrs := []any{"door", req.Door, "client", req.Client.Name, "user", auditName(req.User),
			"outcome", d.Outcome, "reason", d.Reason, "audit", seq}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		g.log.Log(ctx, lvl, "decision", attrs...)
	}
	return *d, err
}

func (g *Gate) entry(r *run) audit.Entry {
	detail := audit.DecisionDetail{Notes: r.d.Notes, NAS: r.req.NAS, VLAN: r.d.Attributes.VLAN}
	for _, s := range r.d.Steps {
		detail.Steps = append(detail.Steps, audit.Step(s))
	}
	src := ""
	if r.req.Source.IsValid() {
		src = r.req.Source.String()
	}
	user := r.req.User
	if user == "" {
		// EAP-TLS may come without a name: the certificate named the user.
		user = r.d.User
	}
	return audit.Entry{
		Kind: audit.KindDecision, Door: string(r.req.Door), Client: r.req.Client.Name,
		User: auditName(user), Device: auditName(r.req.Device), Source: src,
		Outcome: string(r.d.Outcome), Reason: string(r.d.Reason), Detail: detail.Marshal(),
	}
}

// auditName makes untrusted text safe to store and print: valid UTF-8, no
// control characters, bounded.
func auditName(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
	if len(s) > 128 {
		s = s[:128]
		s = strings.ToValidUTF8(s, "")
	}
	return s
}

func validUserName(s string) bool {
	if s == "" || len(s) > MaxUserName || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return strings.TrimSpace(s) == s
}

// PendingChallenges reports how many challenges await an answer.
func (g *Gate) PendingChallenges() int { return g.challenges.len() }
