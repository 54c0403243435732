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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
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
	MethodPAP      Method = "pap"
	MethodCHAP     Method = "chap"
	MethodMSCHAP   Method = "mschap"
	MethodEAP      Method = "eap"
	MethodNone     Method = "none"
	MethodLDAPBind Method = "ldap-bind"
)

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
}

// Attributes are what an Accept grants.
type Attributes struct {
	VLAN           int
	SessionTimeout int // seconds; 0: none
	Class          string
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
	AuditSeq    int64
	Steps       []Step
	Notes       []string
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
	Logger   *slog.Logger
	Metrics  *Metrics // optional
	Now      func() time.Time
	Rand     io.Reader // challenge State values; nil: crypto/rand
	// MaxChallenges bounds the pending-challenge table (default 4096).
	MaxChallenges int
}

// UpstreamSource finds a connector by name.
type UpstreamSource interface {
	Lookup(ctx context.Context, name string) (upstream.Verifier, error)
}

// Gate decides logins. It is safe for concurrent use. Close stops its
// background work.
type Gate struct {
	store      *store.Store
	audit      *audit.Log
	hasher     *passwd.Hasher
	upstreams  map[string]upstream.Verifier
	registry   UpstreamSource
	cacheJobs  chan cacheJob
	stop       chan struct{}
	stopOnce   sync.Once
	siteMu     sync.Mutex
	site       Site
	siteAt     time.Time
	log        *slog.Logger
	metrics    *Metrics
	now        func() time.Time
	challenges *challenges
	remembered *remembered
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
		challenges: newChallenges(c.MaxChallenges, c.Rand),
		remembered: newRemembered(),
		cacheJobs:  make(chan cacheJob, 32), stop: make(chan struct{}),
	}
	go g.cacheWorker()
	return g, nil
}

// loadSite returns the site settings, read from the store at most once a
// second (a change by the CLI or console applies within a second).
func (g *Gate) loadSite(ctx context.Context, now time.Time) (Site, error) {
	g.siteMu.Lock()
	defer g.siteMu.Unlock()
	if !g.siteAt.IsZero() && now.Sub(g.siteAt) < time.Second && now.Sub(g.siteAt) >= 0 {
		return g.site, nil
	}
	s, err := LoadSite(ctx, g.store)
	if err != nil {
		return Site{}, err
	}
	g.site, g.siteAt = s, now
	return s, nil
}

// Close stops the gate's background work.
func (g *Gate) Close() { g.stopOnce.Do(func() { close(g.stop) }) }

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
}

func (r *run) step(stage, result string) {
	r.d.Steps = append(r.d.Steps, Step{Stage: stage, Result: result})
}

// refuse sets a rejection; msg must be one of the Msg constants.
func (r *run) refuse(reason Reason, msg string) {
	r.d.Outcome, r.d.Reason, r.d.Message = Reject, reason, msg
}

// Decide answers one login. A refusal is a Decision with a nil error; a
// non-nil error means the appliance could not decide (the Decision is then
// a Reject with ReasonInternal, and the door must fail closed).
func (g *Gate) Decide(ctx context.Context, req Request) (Decision, error) {
	start := g.now()
	// Fail closed by construction: a Reject until every stage has passed.
	d := Decision{Outcome: Reject, Reason: ReasonInternal, Message: MsgDenied}
	d.Notes = append(d.Notes, req.Notes...)
	r := &run{req: &req, d: &d, now: start}
	return g.finish(ctx, r, g.decide(ctx, r))
}

// finish audits a decision, counts it and logs it. err is the pipeline's
// own error: with it, or without an audit entry, the decision is a Reject.
func (g *Gate) finish(ctx context.Context, r *run, err error) (Decision, error) {
	d, req := r.d, r.req
	if err != nil {
		d.Outcome, d.Reason, d.Message, d.State = Reject, ReasonInternal, MsgDenied, nil
		d.Attributes = Attributes{}
		r.step("error", err.Error())
	}
	seq, aerr := g.audit.Append(ctx, g.entry(r))
	if aerr != nil {
		// No decision without its audit entry.
		d.Outcome, d.Reason, d.Message, d.State = Reject, ReasonInternal, MsgDenied, nil
		d.Attributes = Attributes{}
		err = errors.Join(err, aerr)
	}
	d.AuditSeq = seq
	if g.metrics != nil {
		g.metrics.Decisions.WithLabelValues(string(req.Door), string(d.Outcome), string(d.Reason)).Inc()
		g.metrics.Latency.WithLabelValues(string(req.Door), string(d.Outcome)).Observe(g.now().Sub(r.now).Seconds())
	}
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelError
	}
	attrs := []any{"door", req.Door, "client", req.Client.Name, "user", auditName(req.User),
		"outcome", d.Outcome, "reason", d.Reason, "audit", seq}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	g.log.Log(ctx, lvl, "decision", attrs...)
	return *d, err
}

func (g *Gate) entry(r *run) audit.Entry {
	detail := struct {
		Steps []Step   `json:"steps,omitempty"`
		Notes []string `json:"notes,omitempty"`
		NAS   string   `json:"nas,omitempty"`
		VLAN  int      `json:"vlan,omitempty"`
	}{r.d.Steps, r.d.Notes, r.req.NAS, r.d.Attributes.VLAN}
	b, _ := json.Marshal(detail)
	src := ""
	if r.req.Source.IsValid() {
		src = r.req.Source.String()
	}
	return audit.Entry{
		Kind: audit.KindDecision, Door: string(r.req.Door), Client: r.req.Client.Name,
		User: auditName(r.req.User), Device: auditName(r.req.Device), Source: src,
		Outcome: string(r.d.Outcome), Reason: string(r.d.Reason), Detail: string(b),
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

func (g *Gate) decide(ctx context.Context, r *run) error {
	req := r.req
	if req.Invalid != "" {
		r.step("request", string(req.Invalid))
		r.refuse(req.Invalid, MsgDenied)
		return nil
	}
	if req.Plaintext && !req.Client.Policy.AllowPlainLDAP {
		r.step("request", "the password came over plain LDAP; this client's policy requires LDAPS or StartTLS")
		r.refuse(ReasonTLSRequired, MsgDenied)
		return nil
	}
	if req.Method != MethodPAP && req.Method != MethodLDAPBind {
		r.step("request", "method "+string(req.Method)+" is not supported")
		r.refuse(ReasonUnsupportedAuth, MsgDenied)
		return nil
	}
	if !validUserName(req.User) {
		r.step("request", "user name is empty, too long, not UTF-8 or has control characters")
		r.refuse(ReasonBadUserName, MsgDenied)
		return nil
	}
	pol := req.Client.Policy
	r.step("client", fmt.Sprintf("%s (mfa %s, style %s, upstream %s)", req.Client.Name, pol.MFA, pol.Style, pol.Upstream))
	site, err := g.loadSite(ctx, r.now)
	if err != nil {
		return fmt.Errorf("site settings: %w", err)
	}
	r.site = site
	if req.State != nil {
		return g.answerChallenge(ctx, r)
	}
	return g.firstFactor(ctx, r)
}

// splitAppended splits "password,123456" when the text after the last
// comma has the shape of a code.
func splitAppended(pw secrets.Secret) (secrets.Secret, secrets.Secret, bool) {
	i := strings.LastIndexByte(string(pw), ',')
	if i < 0 || !mfa.LooksLikeCode(string(pw[i+1:]), mfa.DefaultDigits) {
		return nil, nil, false
	}
	return pw[:i], pw[i+1:], true
}

// Canonicalizer is implemented by upstreams that accept several forms of
// one login name (Active Directory: alice, CLINIC\alice, alice@clinic.local)
// and can name the local record they all belong to without asking the
// server.
type Canonicalizer interface {
	Canonical(user string) string
}

// localUser finds the local record for a name as typed, trying the
// upstream's canonical form too, so that lockout, failure counting and the
// credential cache cannot be dodged by typing the name another way.
func (g *Gate) localUser(ctx context.Context, v upstream.Verifier, typed string) (store.User, error) {
	u, err := g.store.UserByName(ctx, typed)
	if !errors.Is(err, store.ErrNotFound) {
		return u, err
	}
	if c, ok := v.(Canonicalizer); ok {
		if name := c.Canonical(typed); name != "" && !strings.EqualFold(name, typed) {
			return g.store.UserByName(ctx, name)
		}
	}
	return u, err
}

func (g *Gate) firstFactor(ctx context.Context, r *run) error {
	req, pol := r.req, r.req.Client.Policy
	verifier, err := g.lookupUpstream(ctx, pol.Upstream)
	if err != nil {
		r.step("password", "upstream "+pol.Upstream+" cannot be used: "+err.Error())
		r.refuse(ReasonUpstreamDown, MsgDenied)
		return nil
	}
	local := pol.Upstream == "local"

	// A locked account is not checked at all (that is the point of the
	// lock), but costs the same time as one that is.
	pre, preErr := g.localUser(ctx, verifier, req.User)
	if preErr == nil && pre.LockedUntil.After(r.now) {
		if err := g.hasher.Dummy(ctx, req.Password); err != nil {
			return err
		}
		r.step("lockout", "locked until "+pre.LockedUntil.Format(time.RFC3339))
		r.refuse(ReasonLockedOut, MsgDenied)
		return nil
	} else if preErr != nil && !errors.Is(preErr, store.ErrNotFound) {
		return preErr
	}

	password := req.Password
	if pol.MFA != policy.MFAOff && (pol.Style != policy.StyleChallenge || req.Door == DoorLDAP) {
		if pw, code, ok := splitAppended(req.Password); ok {
			password, r.code = pw, code
		}
	}
	id, err := verifier.Verify(ctx, req.User, password)
	if errors.Is(err, upstream.ErrBadCredentials) && r.code != nil && local {
		// The "code" may have been the end of a password with a comma.
		// Only asked of the local store: a second failed bind upstream
		// would count twice towards the directory's own lockout.
		password, r.code = req.Password, nil
		id, err = verifier.Verify(ctx, req.User, password)
	}
	switch {
	case err == nil:
	case errors.Is(err, upstream.ErrUnknownUser):
		r.step("password", "no such user")
		r.refuse(ReasonUnknownUser, MsgDenied)
		if preErr == nil {
			// Gone from the directory: not even the cache may let them in.
			g.forgetCached(ctx, pre.Name, pol.Upstream)
		}
		return nil
	case errors.Is(err, upstream.ErrBadCredentials):
		r.step("password", "wrong password ("+pol.Upstream+")")
		r.refuse(ReasonBadPassword, MsgDenied)
		if preErr == nil {
			g.forgetCached(ctx, pre.Name, pol.Upstream)
			return g.countFailure(ctx, r, pre.Name)
		}
		return nil
	case errors.Is(err, upstream.ErrUnreachable):
		r.step("password", "upstream "+pol.Upstream+" unreachable: "+err.Error())
		if pol.Failmode == policy.FailCached {
			return g.fromCache(ctx, r, verifier, password)
		}
		r.refuse(ReasonUpstreamDown, MsgDenied)
		return nil
	case errors.Is(err, upstream.ErrAccountDisabled):
		r.step("password", pol.Upstream+" says the account is disabled")
		r.refuse(ReasonDisabled, MsgDisabled)
		if preErr == nil {
			g.forgetCached(ctx, pre.Name, pol.Upstream)
		}
		return nil
	case errors.Is(err, upstream.ErrAccountExpired):
		r.step("password", pol.Upstream+" says the account has expired")
		r.refuse(ReasonExpired, MsgExpired)
		if preErr == nil {
			g.forgetCached(ctx, pre.Name, pol.Upstream)
		}
		return nil
	case errors.Is(err, upstream.ErrPasswordExpired):
		r.step("password", pol.Upstream+" says the password has expired")
		r.refuse(ReasonPasswordExpired, MsgPwExpired)
		return nil
	case errors.Is(err, upstream.ErrMustChange):
		r.step("password", pol.Upstream+" says the password must be changed first")
		r.refuse(ReasonMustChange, MsgPwExpired)
		return nil
	case errors.Is(err, upstream.ErrAccountLockedOut):
		// Active Directory reports a lock whatever the password, so the
		// person is told nothing more than for a wrong password.
		r.step("password", pol.Upstream+" says the account is locked out")
		r.refuse(ReasonLockedOut, MsgDenied)
		return nil
	case errors.Is(err, upstream.ErrUpstreamRefused):
		r.step("password", err.Error())
		r.refuse(ReasonUpstreamRefused, MsgDenied)
		return nil
	default:
		return fmt.Errorf("upstream %s: %w", pol.Upstream, err)
	}
	r.step("password", "verified by "+pol.Upstream)

	if !validUserName(id.Name) {
		r.step("account", fmt.Sprintf("%s returned an unusable user name %q", pol.Upstream, auditName(id.Name)))
		r.refuse(ReasonUpstreamRefused, MsgDenied)
		return nil
	}
	u, err := pre, preErr
	if preErr != nil || !strings.EqualFold(pre.Name, id.Name) {
		u, err = g.store.UserByName(ctx, id.Name)
	}
	if errors.Is(err, store.ErrNotFound) && !local {
		u, err = g.provision(ctx, r, id.Name, pol.Upstream)
	}
	if err != nil {
		return fmt.Errorf("user %q verified but not readable: %w", id.Name, err)
	}
	// The lock may be on the record the name as typed did not find.
	if u.LockedUntil.After(r.now) {
		r.step("lockout", "locked until "+u.LockedUntil.Format(time.RFC3339))
		r.refuse(ReasonLockedOut, MsgDenied)
		return nil
	}
	// An upstream vouches for its own users only: a local account of the
	// same name with its own password (and so its own groups, factor and
	// devices) is another person as far as the appliance knows.
	if !local && !strings.EqualFold(u.Source, pol.Upstream) && u.PasswordHash != "" {
		r.step("account", fmt.Sprintf("%s verified %q, but a local account with its own password has that name; rename one of them", pol.Upstream, u.Name))
		r.refuse(ReasonUpstreamRefused, MsgDenied)
		return nil
	}
	r.user = u
	r.user.Groups = unionGroups(u.Groups, id.Groups)
	r.d.User, r.d.Groups = u.Name, r.user.Groups
	r.passthrough = id.Reply
	if !local && pol.Failmode == policy.FailCached {
		g.queueCache(ctx, u.ID, pol.Upstream, password, id.Groups)
	}
	if !g.posture(ctx, r) {
		return nil
	}
	return g.secondFactor(ctx, r)
}

func unionGroups(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, g := range b {
		dup := false
		for _, x := range out {
			if strings.EqualFold(x, g) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, g)
		}
	}
	return out
}

// provision creates the local record of a user an upstream vouched for, so
// that MFA enrolment, devices, hours and lockout apply to them too.
func (g *Gate) provision(ctx context.Context, r *run, name, source string) (store.User, error) {
	err := g.store.WithTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.CreateUser(ctx, store.User{Name: name, Source: source}, r.now); err != nil {
			return err
		}
		_, err := g.audit.AppendTx(ctx, tx, audit.Entry{
			Kind: audit.KindSystem, Door: string(r.req.Door), Client: r.req.Client.Name, User: name,
			Outcome: "provisioned", Reason: "user_provision", Actor: "upstream:" + source,
			Detail: "first login verified by upstream " + source + "; local record created for MFA, devices and audit",
		})
		return err
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return store.User{}, err
	}
	r.step("account", "provisioned from "+source)
	return g.store.UserByName(ctx, name)
}

// fromCache is failmode "cached": the upstream could not be asked, so a
// password it verified recently may stand in, but only with a second
// factor checked here (TOTP needs no internet).
func (g *Gate) fromCache(ctx context.Context, r *run, verifier upstream.Verifier, password secrets.Secret) error {
	req, pol := r.req, r.req.Client.Policy
	// Every refusal before the hash comparison still costs one hash, so
	// timing tells nothing about what is cached.
	fail := func(why string) error {
		if err := g.hasher.Dummy(ctx, password); err != nil {
			return err
		}
		r.step("cache", why)
		r.refuse(ReasonUpstreamDown, MsgDenied)
		return nil
	}
	u, err := g.localUser(ctx, verifier, req.User)
	if errors.Is(err, store.ErrNotFound) {
		return fail("no verified password cached for this user")
	}
	if err != nil {
		return err
	}
	v, err := g.store.CachedVerifierFor(ctx, u.ID, pol.Upstream)
	if errors.Is(err, store.ErrNotFound) {
		return fail("no verified password cached for this user")
	}
	if err != nil {
		return err
	}
	if age := r.now.Sub(v.VerifiedAt); age > r.site.CacheWindow {
		return fail(fmt.Sprintf("the cached password was verified %s ago, longer than the %s allowed", age.Round(time.Minute), r.site.CacheWindow))
	}
	ok, err := g.hasher.Verify(ctx, v.Hash, password)
	if err != nil {
		return err
	}
	if !ok {
		r.step("cache", "password does not match the one last verified")
		r.refuse(ReasonBadPassword, MsgDenied)
		return g.countFailure(ctx, r, u.Name)
	}
	if _, err := g.store.TOTP(ctx, u.ID); errors.Is(err, store.ErrNotFound) {
		r.step("cache", "password matches the cached one, but accepting from the cache needs TOTP and the user has not enrolled")
		r.refuse(ReasonUpstreamDown, MsgDenied)
		return nil
	} else if err != nil {
		return err
	}
	r.step("cache", fmt.Sprintf("password matches the one %s verified %s ago", pol.Upstream, r.now.Sub(v.VerifiedAt).Round(time.Minute)))
	r.d.Notes = append(r.d.Notes, "accepted_from_cached_credential")
	r.user = u
	r.user.Groups = unionGroups(u.Groups, v.Groups)
	r.d.User, r.d.Groups = u.Name, r.user.Groups
	r.forceMFA = true
	if !g.posture(ctx, r) {
		return nil
	}
	return g.secondFactor(ctx, r)
}

// cacheJob asks the background worker to store a verifier.
type cacheJob struct {
	userID   int64
	upstream string
	password secrets.Secret
	groups   []string
	at       time.Time
}

// queueCache hands the slow hashing to the background worker. When the
// queue is full the old verifier is deleted instead: a verifier must never
// hold an older password than the one last verified.
func (g *Gate) queueCache(ctx context.Context, userID int64, up string, pw secrets.Secret, groups []string) {
	job := cacheJob{userID: userID, upstream: up, password: append(secrets.Secret(nil), pw...), groups: groups, at: g.now()}
	select {
	case g.cacheJobs <- job:
	default:
		clear(job.password)
		if err := g.store.DeleteCachedVerifiers(ctx, userID, up); err != nil {
			g.log.Warn("could not drop a stale cached verifier", "err", err)
		}
	}
}

func (g *Gate) cacheWorker() {
	for {
		select {
		case <-g.stop:
			return
		case j := <-g.cacheJobs:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			h, err := g.hasher.Hash(ctx, j.password)
			clear(j.password)
			if err == nil {
				err = g.store.PutCachedVerifier(ctx, store.CachedVerifier{UserID: j.userID, Upstream: j.upstream, Hash: h, Groups: j.groups, VerifiedAt: j.at})
			}
			cancel()
			if err != nil {
				g.log.Warn("could not cache a verified password", "err", err)
			}
		}
	}
}

// forgetCached deletes a user's cached verifier after the upstream refused
// the password or the account.
func (g *Gate) forgetCached(ctx context.Context, name, up string) {
	if up == "local" {
		return
	}
	u, err := g.store.UserByName(ctx, name)
	if err != nil {
		return
	}
	if err := g.store.DeleteCachedVerifiers(ctx, u.ID, up); err != nil {
		g.log.Warn("could not delete a cached verifier", "user", u.Name, "err", err)
	}
}

// countFailure records a failed password or code and locks the account at
// the threshold.
func (g *Gate) countFailure(ctx context.Context, r *run, name string) error {
	if r.site.LockoutThreshold == 0 {
		return nil
	}
	u, err := g.store.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var lo store.Lockout
	err = g.store.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		lo, err = tx.RecordFailure(ctx, u.ID, r.now, r.site.LockoutThreshold, r.site.LockoutDuration)
		if err != nil || lo.LockedUntil.IsZero() {
			return err
		}
		_, err = g.audit.AppendTx(ctx, tx, audit.Entry{
			Kind: audit.KindSystem, Door: string(r.req.Door), Client: r.req.Client.Name, User: u.Name,
			Source: r.req.Source.String(), Outcome: "locked", Reason: string(ReasonLockedOut),
			Detail: fmt.Sprintf("locked until %s after %d failed attempts", lo.LockedUntil.Format(time.RFC3339), lo.Failures),
		})
		return err
	})
	if err != nil {
		return err
	}
	r.step("lockout", fmt.Sprintf("%d failed attempts in a row", lo.Failures))
	if !lo.LockedUntil.IsZero() {
		r.d.Notes = append(r.d.Notes, "account_locked_now")
		g.log.Warn("account locked", "user", u.Name, "until", lo.LockedUntil, "failures", lo.Failures)
	}
	return nil
}

// posture checks the account and the device. It reports false after
// refusing.
func (g *Gate) posture(ctx context.Context, r *run) bool {
	u, pol := r.user, r.req.Client.Policy
	if u.Disabled {
		r.step("account", "disabled")
		r.refuse(ReasonDisabled, MsgDisabled)
		return false
	}
	if !u.ExpiresAt.IsZero() && !r.now.Before(u.ExpiresAt) {
		r.step("account", "expired at "+u.ExpiresAt.Format(time.RFC3339))
		r.refuse(ReasonExpired, MsgExpired)
		return false
	}
	hours, err := policy.ParseHours(u.Hours)
	if err != nil {
		// Refused when set; a hand-edited value fails closed.
		r.step("hours", "unreadable allowed hours: "+err.Error())
		r.refuse(ReasonOutsideHours, MsgOutsideHours)
		return false
	}
	local := r.now.In(r.site.TimeZone)
	if ok, _ := hours.Remaining(local); !ok {
		r.step("hours", fmt.Sprintf("%s is outside %q (%s)", local.Format("Mon 15:04"), hours, r.site.TimeZone))
		r.refuse(ReasonOutsideHours, MsgOutsideHours)
		return false
	}
	if !pol.GroupAllowed(u.Groups) {
		r.step("groups", fmt.Sprintf("member of %v, client allows %v", u.Groups, pol.AllowedGroups))
		r.refuse(ReasonGroupNotAllowed, MsgNotAllowed)
		return false
	}
	if pol.RequireDevice {
		mac, err := policy.NormalizeMAC(r.req.Device)
		if err != nil {
			r.step("device", "no MAC address in the request")
			r.refuse(ReasonDeviceMissing, MsgDevice)
			return false
		}
		dev, err := g.store.DeviceByMAC(ctx, mac)
		if err != nil || dev.UserID != u.ID {
			r.step("device", mac+" is not registered to this user")
			r.refuse(ReasonDeviceUnknown, MsgDevice)
			return false
		}
		r.step("device", mac+" registered")
	}
	r.step("posture", "passed")
	return true
}

func (g *Gate) secondFactor(ctx context.Context, r *run) error {
	pol := r.req.Client.Policy
	if pol.MFA == policy.MFAOff && !r.forceMFA {
		r.step("mfa", "off for this client")
		return g.authorize(ctx, r)
	}
	enr, err := g.store.TOTP(ctx, r.user.ID)
	if errors.Is(err, store.ErrNotFound) {
		if pol.MFA == policy.MFARequired || r.forceMFA {
			r.step("mfa", "required, but the user has not enrolled")
			r.refuse(ReasonMFANotEnrolled, MsgNotEnrolled)
			return nil
		}
		r.step("mfa", "user not enrolled; client allows that during roll-out")
		r.d.Notes = append(r.d.Notes, "mfa_not_enrolled")
		return g.authorize(ctx, r)
	}
	if err != nil {
		return fmt.Errorf("mfa enrolment: %w", err)
	}
	if pol.MFARemember > 0 && !r.forceMFA && g.remembered.ok(rememberKey(r, enr.Seed), r.user.Version, r.now) {
		// The code typed with the password, if any, is not checked again:
		// an EHR repeats what the user typed once, and that code is spent.
		r.step("mfa", fmt.Sprintf("a code was verified for this user from %s within the last %s", r.req.Source, time.Duration(pol.MFARemember)*time.Second))
		r.d.Notes = append(r.d.Notes, "mfa_remembered")
		return g.authorize(ctx, r)
	}
	if r.code != nil {
		return g.checkCode(ctx, r, enr)
	}
	// LDAP has no challenge: a code can only come appended to the password.
	if pol.Style == policy.StyleAppend || r.req.Door == DoorLDAP {
		r.step("mfa", "no code appended to the password")
		r.refuse(ReasonMFARequired, MsgAppendCode)
		return nil
	}
	state, ok := g.challenges.put(challenge{
		user: r.user.Name, typed: r.req.User, userID: r.user.ID, client: r.req.Client.Name,
		source: r.req.Source.String(), expires: r.now.Add(r.site.ChallengeTTL),
		groups: r.user.Groups, notes: r.d.Notes, passthrough: r.passthrough,
	}, r.now)
	if !ok {
		r.step("mfa", "too many pending challenges")
		r.refuse(ReasonChallengeFull, MsgBusy)
		return nil
	}
	r.step("mfa", "code requested")
	r.d.Outcome, r.d.Reason, r.d.Message, r.d.State = Challenge, ReasonMFAChallenge, MsgEnterCode, state
	return nil
}

func (g *Gate) answerChallenge(ctx context.Context, r *run) error {
	req := r.req
	c, ok := g.challenges.take(req.State)
	switch {
	case !ok:
		r.step("challenge", "unknown or already used State")
		r.refuse(ReasonChallengeInvalid, MsgDenied)
		return nil
	case c.client != req.Client.Name || (!strings.EqualFold(c.user, req.User) && !strings.EqualFold(c.typed, req.User)):
		r.step("challenge", fmt.Sprintf("State was issued to another user or client (%s via %s)", c.user, c.client))
		r.refuse(ReasonChallengeInvalid, MsgDenied)
		return nil
	case !r.now.Before(c.expires):
		r.step("challenge", "answered after it expired")
		r.refuse(ReasonChallengeExpired, MsgDenied)
		return nil
	}
	r.step("challenge", "answer to a pending challenge")
	u, err := g.store.UserByName(ctx, c.user)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.ID != c.userID) {
		r.step("account", "removed since the challenge")
		r.refuse(ReasonUnknownUser, MsgDenied)
		return nil
	}
	if err != nil {
		return err
	}
	if u.LockedUntil.After(r.now) {
		r.step("lockout", "locked until "+u.LockedUntil.Format(time.RFC3339))
		r.refuse(ReasonLockedOut, MsgDenied)
		return nil
	}
	r.user = u
	r.user.Groups = unionGroups(u.Groups, c.groups)
	r.d.User, r.d.Groups = u.Name, r.user.Groups
	r.passthrough = c.passthrough
	for _, n := range c.notes {
		if !slices.Contains(r.d.Notes, n) {
			r.d.Notes = append(r.d.Notes, n)
		}
	}
	if !g.posture(ctx, r) {
		return nil
	}
	enr, err := g.store.TOTP(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		r.step("mfa", "enrolment removed since the challenge")
		r.refuse(ReasonMFANotEnrolled, MsgNotEnrolled)
		return nil
	}
	if err != nil {
		return err
	}
	r.code = secrets.Secret(strings.TrimSpace(string(req.Password)))
	return g.checkCode(ctx, r, enr)
}

func (g *Gate) checkCode(ctx context.Context, r *run, enr store.TOTP) error {
	step, ok, err := mfa.Match(enr.Seed, string(r.code), r.now, r.site.TOTPWindow, enr.Digits, enr.Period, enr.Algorithm)
	if err != nil {
		return err
	}
	if !ok {
		r.step("mfa", "wrong code")
		r.refuse(ReasonMFABadCode, MsgBadCode)
		return g.countFailure(ctx, r, r.user.Name)
	}
	fresh, err := g.store.ConsumeTOTPStep(ctx, r.user.ID, step)
	if err != nil {
		return err
	}
	if !fresh {
		r.step("mfa", "code already used")
		r.refuse(ReasonMFAReplay, MsgBadCode)
		return g.countFailure(ctx, r, r.user.Name)
	}
	r.step("mfa", "code accepted")
	if pol := r.req.Client.Policy; pol.MFARemember > 0 && !r.forceMFA {
		g.remembered.put(rememberKey(r, enr.Seed), r.user.Version, r.now.Add(time.Duration(pol.MFARemember)*time.Second), r.now)
	}
	return g.authorize(ctx, r)
}

// authorize turns the user's groups into reply attributes and accepts.
func (g *Gate) authorize(ctx context.Context, r *run) error {
	pol, u := r.req.Client.Policy, r.user
	attrs := Attributes{SessionTimeout: pol.SessionTimeout}
	if rule, ok := pol.RuleFor(u.Groups); ok {
		attrs.VLAN, attrs.Class = rule.VLAN, rule.Class
		if rule.SessionTimeout > 0 {
			attrs.SessionTimeout = rule.SessionTimeout
		}
		r.step("authorize", fmt.Sprintf("rule for group %s", rule.Group))
	} else {
		r.step("authorize", "no group rule; default attributes")
	}
	// A session must not outlive the allowed hours or the account.
	limit := func(until time.Duration) {
		s := int(until / time.Second)
		if s < 1 {
			s = 1
		}
		if attrs.SessionTimeout == 0 || s < attrs.SessionTimeout {
			attrs.SessionTimeout = s
		}
	}
	if hours, err := policy.ParseHours(u.Hours); err == nil && !hours.Always() {
		if _, left := hours.Remaining(r.now.In(r.site.TimeZone)); left > 0 {
			limit(left)
		}
	}
	if !u.ExpiresAt.IsZero() {
		limit(u.ExpiresAt.Sub(r.now))
	}
	if u.Failures > 0 {
		if err := g.store.WithTx(ctx, func(tx *store.Tx) error { return tx.ResetFailures(ctx, u.ID) }); err != nil {
			return err
		}
	}
	r.d.Attributes = attrs
	r.d.Passthrough = r.passthrough
	r.d.Outcome, r.d.Reason, r.d.Message = Accept, ReasonOK, ""
	return nil
}

// PendingChallenges reports how many challenges await an answer.
func (g *Gate) PendingChallenges() int { return g.challenges.len() }
