package appliance

// Push MFA (docs/upstreams/duo.md, okta-verify.md): a branch of the mfa
// stage. One login sends exactly one push; the request is then held (the
// door answers retransmits from the Pending decision and frees its
// worker) or answered with an Access-Challenge whose next request polls
// the same push. No Accept is ever made after the request's budget is
// spent, so a push approved after the NAS gave up opens nothing.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// ProviderSource finds a push MFA provider by name.
type ProviderSource interface {
	Provider(ctx context.Context, name string) (mfa.Provider, error)
}

// Messages of push MFA, shown to the person logging in.
const (
	MsgPush        = "Approve the request on your phone, then press OK — or type a code."
	MsgPushNumber  = "Number to match on your phone: %s. Approve there, then press OK — or type a code."
	MsgPushWaiting = "Still waiting for your approval on the phone. Approve it, then press OK — or type a code."
	MsgPushDenied  = "The request was denied on your phone."
	MsgPushTimeout = "The request on your phone was not answered in time. Try again."
)

// Timings of a push.
const (
	pushLife       = 60 * time.Second // Duo's and Okta's own push timeout
	providerCall   = 10 * time.Second // one preauth, auth or passcode call
	autoHoldMin    = 10 * time.Second // auto: hold only when the NAS waits this long
	defaultNASTrys = 3                // until seen otherwise: radclient's and most NASes' default
	maxPushes      = 4096             // pushes followed at once
	// minNASGap: closer copies are duplicates (a storm, a looping
	// network), not a NAS's retransmit timer, and teach nothing.
	minNASGap = 500 * time.Millisecond
)

// storeProviders builds providers from the store, rebuilding one when its
// version changes (an admin edit applies to the next login).
type storeProviders struct {
	st *store.Store
	mu sync.Mutex
	m  map[string]builtProvider
}

type builtProvider struct {
	version int64
	p       mfa.Provider
}

func (s *storeProviders) Provider(ctx context.Context, name string) (mfa.Provider, error) {
	v, err := s.st.MFAProviderVersion(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no MFA provider named %q is configured ('clinicgate mfa provider list')", name)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	b, ok := s.m[name]
	s.mu.Unlock()
	if ok && b.version == v {
		return b.p, nil
	}
	row, err := s.st.MFAProviderByName(ctx, name)
	if err != nil {
		return nil, err
	}
	p, err := mfa.Build(row.Kind, row.Settings, row.Secret)
	if err != nil {
		return nil, fmt.Errorf("MFA provider %s: %w", name, err)
	}
	s.mu.Lock()
	s.m[name] = builtProvider{row.Version, p}
	s.mu.Unlock()
	return p, nil
}

// pushTxn is one push sent and followed: a poller goroutine asks the
// provider until the push ends or its life runs out. Holds and
// challenges watch it; it never decides anything itself.
type pushTxn struct {
	provider string
	push     mfa.Push
	sent     time.Time
	cancel   context.CancelFunc

	mu      sync.Mutex
	result  mfa.PushResult
	err     error // the provider failed while polling
	at      time.Time
	changed chan struct{} // closed and replaced at each change
}

func (t *pushTxn) snapshot() (mfa.PushResult, error, time.Time, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result, t.err, t.at, t.changed
}

func (t *pushTxn) set(r mfa.PushResult, err error, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Number == "" {
		r.Number = t.result.Number
	}
	t.result, t.err, t.at = r, err, now
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *pushTxn) number() string {
	r, _, _, _ := t.snapshot()
	if r.Number != "" {
		return r.Number
	}
	return t.push.Number
}

// pushes follows the pushes in flight.
type pushes struct {
	mu   sync.Mutex
	n    int
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	// clocks are what each client's NAS has shown of its retransmit timer.
	clocks map[string]*nasClock
}

func newPushes() *pushes {
	ctx, stop := context.WithCancel(context.Background())
	return &pushes{ctx: ctx, stop: stop, clocks: map[string]*nasClock{}}
}

func (p *pushes) close() {
	p.stop()
	p.wg.Wait()
}

// nasClock is a NAS's retransmit timer as learned from its retransmits:
// the gap between two sends of one request, and how many sends it makes
// before it gives up.
type nasClock struct {
	gap   time.Duration
	tries int
	// backoff: the NAS doubles its wait after each send (hostapd does).
	backoff bool
}

func (p *pushes) clock(client string) nasClock {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clocks[client]; c != nil {
		return *c
	}
	return nasClock{}
}

func (p *pushes) learnBackoff(client string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clocks[client]; c != nil {
		c.backoff = true
	}
}

func (p *pushes) learn(client string, gap time.Duration, tries int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.clocks[client]
	if c == nil {
		if len(p.clocks) >= 4096 {
			return
		}
		c = &nasClock{}
		p.clocks[client] = c
	}
	if gap > 0 && (c.gap == 0 || gap < c.gap) {
		c.gap = gap
	}
	if tries > c.tries {
		c.tries = tries
	}
}

// budget is how long after a request's first send the answer must leave:
// a little before the NAS's last retransmit times out, and never more
// than the client's cap. Without any retransmit seen yet it is the cap.
func budget(c nasClock, limit time.Duration) time.Duration {
	if c.gap <= 0 {
		return limit
	}
	tries := max(c.tries, defaultNASTrys)
	margin := min(c.gap/3, time.Second)
	total := time.Duration(tries) * c.gap
	if c.backoff {
		total = c.gap * time.Duration(1<<min(tries, 10)-1)
	}
	return min(limit, total-margin)
}

// start sends one push and starts following it.
func (g *Gate) startPush(ctx context.Context, r *run, prov mfa.Provider, name string) (*pushTxn, error) {
	g.pushes.mu.Lock()
	if g.pushes.n >= maxPushes {
		g.pushes.mu.Unlock()
		return nil, errPushesFull
	}
	g.pushes.n++
	g.pushes.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, providerCall)
	push, err := prov.StartPush(cctx, r.user.Name, mfa.PushInfo{IP: r.req.Source.String(), Client: r.req.Client.Name})
	cancel()
	if err != nil {
		g.pushDone()
		return nil, err
	}
	push.Sent = g.now()
	pctx, pcancel := context.WithTimeout(g.pushes.ctx, pushLife)
	t := &pushTxn{provider: name, push: push, sent: push.Sent, cancel: pcancel, changed: make(chan struct{}),
		result: mfa.PushResult{Status: mfa.StatusWaiting, Number: push.Number}, at: push.Sent}
	g.pushes.wg.Add(1)
	go func() {
		defer g.pushes.wg.Done()
		defer g.pushDone()
		defer pcancel()
		for {
			res, err := prov.Poll(pctx, push)
			now := g.now()
			switch {
			case err != nil && errors.Is(err, mfa.ErrUnreachable) && pctx.Err() == nil:
				// A blip: ask again shortly, within the push's life.
				select {
				case <-pctx.Done():
				case <-time.After(time.Second):
				}
				continue
			case err != nil:
				if pctx.Err() != nil {
					t.set(mfa.PushResult{Status: mfa.StatusTimeout, Detail: "no answer within the push's life"}, nil, now)
				} else {
					t.set(mfa.PushResult{}, err, now)
				}
				return
			case res.Status.Done():
				t.set(res, nil, now)
				return
			case pctx.Err() != nil:
				t.set(mfa.PushResult{Status: mfa.StatusTimeout, Detail: "no answer within the push's life"}, nil, now)
				return
			}
			if old, _, _, _ := t.snapshot(); res.Number != "" && res.Number != old.Number {
				t.set(res, nil, now)
			}
		}
	}()
	return t, nil
}

var errPushesFull = errors.New("too many pushes in flight")

func (g *Gate) pushDone() {
	g.pushes.mu.Lock()
	g.pushes.n--
	g.pushes.mu.Unlock()
}

// PushesInFlight reports how many pushes are being followed.
func (g *Gate) PushesInFlight() int {
	g.pushes.mu.Lock()
	defer g.pushes.mu.Unlock()
	return g.pushes.n
}

// since says when, relative to the push, for the decision's story.
func since(t *pushTxn, at time.Time) string {
	return fmt.Sprintf("%s (+%.1fs)", at.UTC().Format("15:04:05.0"), at.Sub(t.sent).Seconds())
}

// pushFactor is the mfa stage with a push provider. handled false means
// the provider could not be reached and the client falls back to TOTP:
// the caller goes on with the TOTP path.
func (g *Gate) pushFactor(ctx context.Context, r *run, name string) (verdict, error, bool) {
	pol := r.req.Client.Policy.Push
	prov, err := g.providers.Provider(ctx, name)
	if err != nil {
		r.step("mfa", "push provider "+name+" cannot be used: "+err.Error())
		v := r.refuse(ReasonMFAProviderError, MsgDenied)
		return v, nil, true
	}
	if r.code != nil {
		v, err := g.passcode(ctx, r, prov, name, string(r.code))
		return v, err, true
	}
	cctx, cancel := context.WithTimeout(ctx, providerCall)
	pre, err := prov.Preauth(cctx, r.user.Name, r.req.Source.String())
	cancel()
	if err != nil {
		return g.providerFailed(r, name, "preauth", err)
	}
	switch pre.Result {
	case mfa.PreauthAllow:
		r.step("mfa", name+" preauth: allow (the user may pass without a second factor there): "+pre.Message)
		r.d.Notes = append(r.d.Notes, "mfa_provider_allow")
		return pass, nil, true
	case mfa.PreauthDeny:
		r.step("mfa", name+" preauth: deny: "+pre.Message)
		return r.refuse(ReasonMFAProviderDeny, MsgDenied), nil, true
	case mfa.PreauthEnroll:
		r.step("mfa", name+" preauth: enroll (the user has no device there): "+pre.Message)
		return r.refuse(ReasonMFANotEnrolled, MsgNotEnrolled), nil, true
	}
	if !pre.Push {
		if pre.Passcode && !r.req.noCode() && !r.req.appendOnly() && pol.EffectiveMode() != policy.PushHold {
			return g.pushChallenge(r, nil, name, MsgEnterCode, "the user has no push device at "+name+"; a passcode is asked for"), nil, true
		}
		r.step("mfa", name+" preauth: auth, but the user has no device that takes pushes")
		return r.refuse(ReasonMFANotEnrolled, MsgNotEnrolled), nil, true
	}
	t, err := g.startPush(ctx, r, prov, name)
	if errors.Is(err, errPushesFull) {
		r.step("mfa", "too many pushes in flight")
		return r.refuse(ReasonChallengeFull, MsgBusy), nil, true
	}
	if err != nil {
		return g.providerFailed(r, name, "auth (push)", err)
	}
	where := pre.Device
	if t.push.Device != "" {
		where = t.push.Device
	}
	r.step("push", fmt.Sprintf("sent by %s to %q at %s", name, where, since(t, t.sent)))
	mode := pol.EffectiveMode()
	canChallenge := !r.req.noCode() && !r.req.appendOnly()
	limit := time.Duration(pol.BudgetSeconds()) * time.Second
	b := budget(g.pushes.clock(r.req.Client.Name), limit)
	switch {
	case canChallenge && t.push.Number != "":
		// The number must be seen at login: only a challenge shows it.
		return g.pushChallenge(r, t, name, "", "number to match shown in the challenge"), nil, true
	case canChallenge && (mode == policy.PushChallenge || (mode == policy.PushAuto && b < autoHoldMin)):
		why := "mode challenge"
		if mode == policy.PushAuto {
			why = fmt.Sprintf("mode auto, and the NAS waits about %s", b.Round(100*time.Millisecond))
		}
		return g.pushChallenge(r, t, name, "", why), nil, true
	}
	r.hold = &hold{txn: t, name: name, limit: limit, challenge: canChallenge && mode == policy.PushAuto, canChallenge: canChallenge}
	r.step("push", fmt.Sprintf("holding the request (mode %s, budget %s until the NAS's retransmits say otherwise)", mode, b.Round(100*time.Millisecond)))
	return stop, nil, true
}

// providerFailed applies the client's fail mode to a provider failure:
// unreachable falls back to TOTP where the client says so; anything else
// (refused credentials, an answer outside the contract) rejects.
func (g *Gate) providerFailed(r *run, name, call string, err error) (verdict, error, bool) {
	pol := r.req.Client.Policy.Push
	r.step("mfa", fmt.Sprintf("%s %s failed: %v", name, call, err))
	if errors.Is(err, mfa.ErrUnreachable) {
		if pol.Fallback == policy.PushFallbackTOTP {
			r.step("mfa", name+" is unreachable; this client falls back to TOTP (push fallback totp)")
			r.d.Notes = append(r.d.Notes, "mfa_fallback_totp")
			r.fellBack = true
			return pass, nil, false
		}
		return r.refuse(ReasonMFAProviderDown, MsgDenied), nil, true
	}
	return r.refuse(ReasonMFAProviderError, MsgDenied), nil, true
}

// passcode checks a code typed instead of a push with the provider.
func (g *Gate) passcode(ctx context.Context, r *run, prov mfa.Provider, name, code string) (verdict, error) {
	cctx, cancel := context.WithTimeout(ctx, providerCall)
	res, err := prov.VerifyPasscode(cctx, r.user.Name, code)
	cancel()
	if err != nil {
		v, err, handled := g.providerFailed(r, name, "passcode", err)
		if !handled {
			// Unreachable, TOTP fallback: the code is checked as TOTP.
			enr, terr := g.store.TOTP(ctx, r.user.ID)
			if errors.Is(terr, store.ErrNotFound) {
				r.step("mfa", "falling back to TOTP, but the user has not enrolled")
				return r.refuse(ReasonMFANotEnrolled, MsgNotEnrolled), nil
			}
			if terr != nil {
				return stop, terr
			}
			r.code = []byte(code)
			return g.checkCode(ctx, r, enr)
		}
		return v, err
	}
	if res.Status != mfa.StatusApproved {
		r.step("mfa", name+" refused the passcode: "+res.Detail)
		return r.refuse(ReasonMFABadCode, MsgBadCode), g.countFailure(ctx, r, r.user.Name)
	}
	r.step("mfa", name+" accepted the passcode")
	return pass, nil
}

// pushChallenge answers with an Access-Challenge tied to push t (nil: a
// passcode only) and to this user and client.
func (g *Gate) pushChallenge(r *run, t *pushTxn, name, msg, why string) verdict {
	if msg == "" {
		msg = MsgPush
		if t != nil {
			if n := t.number(); n != "" {
				msg = fmt.Sprintf(MsgPushNumber, n)
			}
		}
	}
	ttl := r.site.ChallengeTTL
	if ttl < pushLife {
		ttl = pushLife
	}
	state, ok := g.challenges.put(challenge{
		user: r.user.Name, typed: r.req.User, userID: r.user.ID, client: r.req.Client.Name,
		source: r.req.Source.String(), expires: r.now.Add(ttl),
		groups: r.user.Groups, notes: r.d.Notes, passthrough: r.passthrough,
		push: t, provider: name,
	}, r.now)
	if !ok {
		if t != nil {
			t.cancel()
		}
		r.step("mfa", "too many pending challenges")
		return r.refuse(ReasonChallengeFull, MsgBusy)
	}
	r.step("mfa", "challenge: "+why)
	r.d.Outcome, r.d.Reason, r.d.Message, r.d.State = Challenge, ReasonMFAChallenge, msg, state
	return stop
}

// resumePush is the mfa stage for an answer to a push challenge: a code
// typed is checked with the provider; anything else (OK, empty) polls
// the push.
func (g *Gate) resumePush(ctx context.Context, r *run, c *challenge) (verdict, error) {
	typed := strings.TrimSpace(string(r.req.Password))
	if looksLikePasscode(typed) {
		if c.push != nil {
			c.push.cancel()
		}
		prov, err := g.providers.Provider(ctx, c.provider)
		if err != nil {
			r.step("mfa", "push provider "+c.provider+" cannot be used: "+err.Error())
			return r.refuse(ReasonMFAProviderError, MsgDenied), nil
		}
		return g.passcode(ctx, r, prov, c.provider, typed)
	}
	if c.push == nil {
		r.step("mfa", "no code typed")
		return r.refuse(ReasonMFABadCode, MsgBadCode), nil
	}
	r.step("mfa", "answer to a push challenge: polling the push")
	if v, done := g.pushOutcome(ctx, r, c.push); done {
		return v, nil
	}
	limit := time.Duration(r.req.Client.Policy.Push.BudgetSeconds()) * time.Second
	r.hold = &hold{txn: c.push, name: c.provider, limit: limit, challenge: true, canChallenge: true, shown: c.push.number()}
	return stop, nil
}

func looksLikePasscode(s string) bool {
	return len(s) >= 6 && len(s) <= 8 && mfa.LooksLikeCode(s, len(s))
}

// pushOutcome turns a finished push into the stage's verdict; done is
// false while it waits.
func (g *Gate) pushOutcome(ctx context.Context, r *run, t *pushTxn) (verdict, bool) {
	res, perr, at, _ := t.snapshot()
	if perr != nil {
		r.step("push", fmt.Sprintf("%s failed while following the push at %s: %v", t.provider, since(t, at), perr))
		if errors.Is(perr, mfa.ErrUnreachable) {
			return r.refuse(ReasonMFAProviderDown, MsgDenied), true
		}
		return r.refuse(ReasonMFAProviderError, MsgDenied), true
	}
	switch res.Status {
	case mfa.StatusApproved:
		r.step("push", "approved at "+since(t, at))
		return pass, true
	case mfa.StatusDenied:
		r.step("push", "denied at "+since(t, at)+": "+res.Detail)
		return r.refuse(ReasonMFAPushDenied, MsgPushDenied), true
	case mfa.StatusTimeout:
		r.step("push", "timed out at "+since(t, at)+": "+res.Detail)
		return r.refuse(ReasonMFAPushTimeout, MsgPushTimeout), true
	case mfa.StatusFraud:
		r.step("push", "reported as fraud at "+since(t, at)+": the account is locked")
		g.lockForFraud(ctx, r)
		return r.refuse(ReasonMFAPushFraud, MsgPushDenied), true
	}
	return stop, false
}

// stillAllowed reads the account again after a wait on the phone: a lock
// (another login's push reported as fraud, too many failures) or a
// disable that came meanwhile stands against the approval.
func (g *Gate) stillAllowed(ctx context.Context, r *run) (verdict, error) {
	u, err := g.store.UserByName(ctx, r.user.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.ID != r.user.ID) {
		r.step("account", "removed while the push was waiting")
		return r.refuse(ReasonUnknownUser, MsgDenied), nil
	}
	if err != nil {
		return stop, err
	}
	now := g.now()
	switch {
	case u.LockedUntil.After(now):
		r.step("lockout", "locked while the push was waiting, until "+u.LockedUntil.Format(time.RFC3339))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	case u.Disabled:
		r.step("account", "disabled while the push was waiting")
		return r.refuse(ReasonDisabled, MsgDisabled), nil
	}
	return pass, nil
}

// lockForFraud locks the account at once and raises an alert: the person
// says they did not ask for this login, so the password is known to
// someone else.
func (g *Gate) lockForFraud(ctx context.Context, r *run) {
	lockFor := r.site.LockoutDuration
	if lockFor <= 0 {
		lockFor = 24 * time.Hour
	}
	err := g.store.WithTx(ctx, func(tx *store.Tx) error {
		lo, err := tx.RecordFailure(ctx, r.user.ID, r.now, 1, lockFor)
		if err != nil {
			return err
		}
		_, err = g.audit.AppendTx(ctx, tx, audit.Entry{
			Kind: audit.KindSystem, Door: string(r.req.Door), Client: r.req.Client.Name, User: r.user.Name,
			Source: r.req.Source.String(), Outcome: "alert", Reason: string(ReasonMFAPushFraud),
			Detail: fmt.Sprintf("%s reported the push for this login as fraud; the account is locked until %s and the password should be changed", r.user.Name, lo.LockedUntil.Format(time.RFC3339)),
		})
		return err
	})
	if err != nil {
		g.log.Error("could not lock an account after a push reported as fraud", "user", r.user.Name, "err", err)
	}
	r.d.Notes = append(r.d.Notes, "account_locked_now")
	g.log.Warn("push reported as fraud: account locked", "user", r.user.Name, "client", r.req.Client.Name)
}

// hold is a request waiting on a push after the mfa stage.
type hold struct {
	txn   *pushTxn
	name  string
	limit time.Duration
	// challenge: when the budget is spent, answer with a challenge on the
	// same push rather than a reject (mode auto, or a challenge answer).
	challenge bool
	// canChallenge: the request can be answered with a challenge (a
	// RADIUS PAP login), so a number to match that turns up can be shown;
	// shown is the number the user has already seen.
	canChallenge bool
	shown        string
}

// Pending is a decision still waiting on a push. The door answers the
// request's retransmits from it (Retransmit tells it when they came, so
// it learns the NAS's timer) and sends the final decision when Done
// closes. It is final by the request's budget: after that no Accept can
// come of it.
type Pending struct {
	g     *Gate
	r     *run
	h     *hold
	start time.Time

	mu       sync.Mutex
	sends    []time.Time
	deadline time.Time
	wake     chan struct{}

	done  chan struct{}
	final Decision
	err   error
}

// Retransmit records that the NAS sent the request again at now.
func (p *Pending) Retransmit(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sends = append(p.sends, now)
	n := len(p.sends)
	if gap := p.sends[n-1].Sub(p.sends[n-2]); gap >= minNASGap {
		p.g.pushes.learn(p.r.req.Client.Name, gap, 0)
		if n >= 3 && gap >= p.sends[n-2].Sub(p.sends[n-3])*3/2 {
			p.g.pushes.learnBackoff(p.r.req.Client.Name)
		}
	}
	p.g.pushes.learn(p.r.req.Client.Name, 0, len(p.sends))
	p.deadline = p.deadlineLocked()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// deadlineLocked is when the decision becomes final without the push.
//
// Mode hold follows the NAS: while it keeps retransmitting it is still
// waiting, so the deadline is a little after its next retransmit is due
// (the latest gap, doubled for a NAS that backs off). A NAS that stops
// has given up; the refusal is then final, and a late approval opens
// nothing. A retransmit that comes later still finds the refusal in the
// reply cache.
//
// A hold that turns into a challenge (mode auto, an answer to a push
// challenge) must reach the NAS before it gives up, or the user never
// sees the prompt: its deadline is a little before the NAS's predicted
// last timeout (budget), or before the next retransmit is due.
//
// Neither passes the client's cap. A NAS never seen retransmitting gets
// the cap.
func (p *Pending) deadlineLocked() time.Time {
	c := p.g.pushes.clock(p.r.req.Client.Name)
	limit := p.start.Add(p.h.limit)
	n := len(p.sends)
	last := p.sends[n-1]
	next := c.gap // the wait after the latest send, as far as known
	if n >= 2 {
		if g := last.Sub(p.sends[n-2]); g >= minNASGap {
			next = g
		}
	}
	if next > 0 && c.backoff && n >= 2 {
		next *= 2
	}
	var d time.Time
	switch {
	case next <= 0:
		d = limit
	case !p.h.challenge:
		// Half a gap of grace: under load a resend may wait in the
		// door's queue before it is seen.
		d = last.Add(next + next/2)
	default:
		d = p.start.Add(budget(c, p.h.limit))
		if l := last.Add(next - min(next/3, time.Second)); l.After(d) {
			d = l
		}
	}
	if d.After(limit) {
		d = limit
	}
	return d
}

// Arrived tells the pending decision when the NAS first sent the request
// and when it resent it before the decision was pending (while it queued
// and while the push was being sent): the gate then measures the NAS's
// timer from the wire, not from when it started deciding.
func (p *Pending) Arrived(first time.Time, resent []time.Time) {
	p.mu.Lock()
	if !first.IsZero() && first.Before(p.sends[0]) {
		p.sends[0] = first
	}
	p.mu.Unlock()
	for _, t := range resent {
		p.Retransmit(t)
	}
}

// Done is closed once the decision is final.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Result is the final decision, once Done is closed.
func (p *Pending) Result() (Decision, error) {
	<-p.done
	return p.final, p.err
}

// Deadline is when the decision will be final at the latest.
func (p *Pending) Deadline() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deadline
}

func (g *Gate) newPending(r *run) *Pending {
	p := &Pending{g: g, r: r, h: r.hold, start: r.now, sends: []time.Time{r.now}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	p.deadline = r.now.Add(budget(g.pushes.clock(r.req.Client.Name), r.hold.limit))
	g.pushes.wg.Add(1)
	go p.run()
	return p
}

// run waits for the push, the deadline or the gate's close, then
// finishes the decision: the rest of the pipeline on approval, the
// refusal or a challenge otherwise, audited like any decision.
func (p *Pending) run() {
	g, r, t := p.g, p.r, p.h.txn
	defer g.pushes.wg.Done()
	const (
		finished = iota
		number
		spent
		closing
	)
	why := finished
	for why == finished {
		res, perr, _, changed := t.snapshot()
		p.mu.Lock()
		deadline := p.deadline
		p.mu.Unlock()
		now := g.now()
		if res.Status.Done() || perr != nil {
			break
		}
		if res.Number != "" && res.Number != p.h.shown && p.h.canChallenge {
			why = number
			break
		}
		if !now.Before(deadline) {
			why = spent
			break
		}
		timer := time.NewTimer(deadline.Sub(now))
		select {
		case <-changed:
		case <-p.wake:
		case <-timer.C:
		case <-g.pushes.ctx.Done():
			why = closing
		}
		timer.Stop()
	}
	// The decision's own deadline starts now, not when the push was sent.
	ctx, cancel := context.WithTimeout(context.Background(), providerCall)
	defer cancel()
	var err error
	now := g.now()
	p.mu.Lock()
	n := len(p.sends)
	p.mu.Unlock()
	switch why {
	case finished:
		if v, _ := g.pushOutcome(ctx, r, t); v == pass {
			if v, err = g.stillAllowed(ctx, r); v == pass && err == nil {
				err = g.walk(ctx, r, after("mfa"))
			}
		}
	case number:
		// A number arrived that the user must see: only a challenge can
		// show it.
		r.step("push", "number to match arrived at "+since(t, now))
		g.pushChallenge(r, t, p.h.name, "", "number to match shown in the challenge")
	case spent:
		if p.h.challenge {
			r.step("push", fmt.Sprintf("still waiting at %s; the NAS is about to give up or the client's budget is spent (%d sends seen): answering with a challenge on the same push", since(t, now), n))
			g.pushChallenge(r, t, p.h.name, MsgPushWaiting, "budget spent, push still waiting")
		} else {
			r.step("push", fmt.Sprintf("still waiting at %s; the NAS stopped resending or the client's budget is spent (%d sends seen): refused; a later approval opens nothing", since(t, now), n))
			t.cancel()
			r.refuse(ReasonMFAPushBudget, MsgPushTimeout)
		}
	case closing:
		r.step("push", "the appliance is shutting down")
		err = errors.New("shutting down while a push was pending")
	}
	p.final, p.err = g.finish(ctx, r, err)
	close(p.done)
}

// after returns the pipeline stages after the named one.
func after(name string) []stage {
	for i, s := range pipeline {
		if s.name == name {
			return pipeline[i+1:]
		}
	}
	return nil
}
