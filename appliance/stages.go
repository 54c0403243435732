package appliance

// The stages of the login pipeline, in the order gate.go lists them.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clinicgate/clinicgate/appliance/audit"
	"github.com/clinicgate/clinicgate/appliance/mfa"
	"github.com/clinicgate/clinicgate/appliance/policy"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// checkRequest refuses what no policy could accept: input the door marked
// invalid, a password over plain LDAP where the client requires TLS, a
// method the gate cannot check or the client does not allow, an unusable
// user name, an EAP outer identity the client's policy refuses.
func (g *Gate) checkRequest(_ context.Context, r *run) (verdict, error) {
	req := r.req
	if req.OuterIdentity != "" && req.OuterIdentity != req.User {
		// Both names stay visible in the audit, whatever the policy.
		r.d.Notes = append(r.d.Notes, "outer_identity:"+auditName(req.OuterIdentity))
	}
	switch {
	case req.Invalid != "":
		r.step("request", string(req.Invalid))
		return r.refuse(req.Invalid, MsgDenied), nil
	case req.Plaintext && !req.Client.Policy.AllowPlainLDAP:
		r.step("request", "the password came over plain LDAP; this client's policy requires LDAPS or StartTLS")
		return r.refuse(ReasonTLSRequired, MsgDenied), nil
	case !slices.Contains([]Method{MethodPAP, MethodLDAPBind, MethodTTLSPAP, MethodMSCHAPv2, MethodPEAP, MethodEAPTLS}, req.Method):
		r.step("request", "method "+string(req.Method)+" is not supported")
		return r.refuse(ReasonUnsupportedAuth, MsgDenied), nil
	}
	if why := req.malformed(); why != "" {
		r.step("request", why)
		return r.refuse(ReasonBadRequest, MsgDenied), nil
	}
	// EAP-TLS is vouched for by the certificate: the EAP identity may be
	// empty, and the certificate names the user.
	if !validUserName(req.User) && (req.Method != MethodEAPTLS || req.User != "") {
		r.step("request", "user name is empty, too long, not UTF-8 or has control characters")
		return r.refuse(ReasonBadUserName, MsgDenied), nil
	}
	if why := methodRefusal(req.Client, req.Method); why != "" {
		r.step("request", why)
		return r.refuse(ReasonMethodNotAllowed, MsgDenied), nil
	}
	if req.OuterIdentity != "" && req.OuterIdentity != req.User {
		if req.Client.Policy.EAPIdentity == policy.EAPIdentityMatch && !strings.EqualFold(req.OuterIdentity, req.User) && !anonymous(req.OuterIdentity) {
			r.step("request", fmt.Sprintf("outer identity %q is not the inner one %q nor anonymous, and client %s requires them to match (eap identity match; 'clinicgate client set %s --eap-identity any' allows it)",
				auditName(req.OuterIdentity), auditName(req.User), req.Client.Name, req.Client.Name))
			return r.refuse(ReasonIdentityMismatch, MsgDenied), nil
		}
	}
	if m := methodName[req.Method]; m != "" {
		// The story says how the credentials came: the method, its
		// tunnel, and both names where the station sent two.
		if req.TLS != "" {
			m += " over " + req.TLS
		}
		if req.OuterIdentity != "" && req.OuterIdentity != req.User {
			m += fmt.Sprintf("; outer identity %q, inner identity %q", auditName(req.OuterIdentity), auditName(req.User))
		}
		r.step("method", m)
	}
	return pass, nil
}

// malformed says what is wrong with a request's credentials for its
// method ("" when nothing is).
func (req Request) malformed() string {
	switch req.Method {
	case MethodMSCHAPv2, MethodPEAP:
		if req.MSCHAP == nil || len(req.Password) > 0 || req.Cert != nil {
			return "an MS-CHAPv2 request must carry the MS-CHAPv2 response and nothing else"
		}
	case MethodEAPTLS:
		if req.Cert == nil || len(req.Password) > 0 || req.MSCHAP != nil {
			return "an EAP-TLS request must carry the verified certificate and no password"
		}
	default:
		if req.MSCHAP != nil || req.Cert != nil {
			return "method " + string(req.Method) + " carries a password, not an MS-CHAPv2 response or a certificate"
		}
	}
	return ""
}

// loadSettings records which client asks under which policy, and reads the
// site settings the later stages use.
func (g *Gate) loadSettings(ctx context.Context, r *run) (verdict, error) {
	pol := r.req.Client.Policy
	r.step("client", fmt.Sprintf("%s (mfa %s, style %s, upstream %s)", r.req.Client.Name, pol.MFA, pol.Style, pol.Upstream))
	site, err := g.site.Get(ctx)
	if err != nil {
		return stop, fmt.Errorf("site settings: %w", err)
	}
	r.site = site
	return pass, nil
}

// resumeChallenge takes the pending challenge a request with a State
// answers, and restores whom the first round verified. A State is good
// once, for its user and client, until it expires.
func (g *Gate) resumeChallenge(ctx context.Context, r *run) (verdict, error) {
	req := r.req
	if req.State == nil {
		return pass, nil
	}
	c, ok := g.challenges.take(req.State)
	switch {
	case !ok:
		r.step("challenge", "unknown or already used State")
		return r.refuse(ReasonChallengeInvalid, MsgDenied), nil
	case c.client != req.Client.Name || (!strings.EqualFold(c.user, req.User) && !strings.EqualFold(c.typed, req.User)):
		r.step("challenge", fmt.Sprintf("State was issued to another user or client (%s via %s)", c.user, c.client))
		return r.refuse(ReasonChallengeInvalid, MsgDenied), nil
	case !r.now.Before(c.expires):
		r.step("challenge", "answered after it expired")
		return r.refuse(ReasonChallengeExpired, MsgDenied), nil
	}
	if slices.Contains(c.notes, "accepted_from_cached_credential") && req.Client.Policy.Failmode != policy.FailCached {
		// The first round stood on a cached password; the operator has
		// since chosen fail-closed. The cache counts only while the
		// client's failmode at decision time is "cached".
		r.step("challenge", "the first round used a cached password, and the client's failmode is now "+string(req.Client.Policy.Failmode))
		return r.refuse(ReasonUpstreamDown, MsgDenied), nil
	}
	r.step("challenge", "answer to a pending challenge")
	u, err := g.store.CachedUserByName(ctx, c.user)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.ID != c.userID) {
		r.step("account", "removed since the challenge")
		return r.refuse(ReasonUnknownUser, MsgDenied), nil
	}
	if err != nil {
		return stop, err
	}
	if u.LockedUntil.After(r.now) {
		r.step("lockout", "locked until "+u.LockedUntil.Format(time.RFC3339))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	}
	if until, blocked := g.loginThrottle.blocked(loginSource(r, u.Name), r.now); blocked && r.site.LockoutThreshold > 0 {
		r.step("lockout", fmt.Sprintf("too many failures for %s from this source (%s); refused until %s", u.Name, describeSource(r), until.Format(time.RFC3339)))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	}
	r.answer = &c
	r.user = u
	r.user.Groups = unionGroups(u.Groups, c.groups)
	r.d.User, r.d.Groups = u.Name, r.user.Groups
	r.passthrough = c.passthrough
	for _, n := range c.notes {
		if !slices.Contains(r.d.Notes, n) {
			r.d.Notes = append(r.d.Notes, n)
		}
	}
	return pass, nil
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
//
// It reads through the store's in-memory cache, which drops a record as
// soon as anything changes it (a failure counted here, an edit by the CLI
// within a quarter of a second).
func (g *Gate) localUser(ctx context.Context, v upstream.Verifier, typed string) (store.User, error) {
	u, err := g.store.CachedUserByName(ctx, typed)
	if !errors.Is(err, store.ErrNotFound) {
		return u, err
	}
	if c, ok := v.(Canonicalizer); ok {
		if name := c.Canonical(typed); name != "" && !strings.EqualFold(name, typed) {
			return g.store.CachedUserByName(ctx, name)
		}
	}
	return u, err
}

// firstFactor has the client's upstream verify the password (a code
// appended to it split off first). When the upstream cannot be reached and
// the client's failmode is "cached", a password it verified recently may
// stand in (fromCache). A challenge answer passes: its first round did
// this.
func (g *Gate) firstFactor(ctx context.Context, r *run) (verdict, error) {
	if r.answer != nil {
		return pass, nil
	}
	switch r.req.Method {
	case MethodMSCHAPv2, MethodPEAP:
		return g.mschapFactor(ctx, r)
	case MethodEAPTLS:
		return g.certFactor(ctx, r)
	}
	req, pol := r.req, r.req.Client.Policy
	verifier, err := g.lookupUpstream(ctx, pol.Upstream)
	if err != nil {
		r.step("password", "upstream "+pol.Upstream+" cannot be used: "+err.Error())
		return r.refuse(ReasonUpstreamDown, MsgDenied), nil
	}
	local := pol.Upstream == "local"

	// A locked account is not checked at all (that is the point of the
	// lock), but costs the same time as one that is.
	pre, preErr := g.localUser(ctx, verifier, req.User)
	if preErr == nil && pre.LockedUntil.After(r.now) {
		g.repeat.forget(pre.ID)
		if err := g.hasher.Dummy(ctx, req.Password); err != nil {
			return stop, err
		}
		r.step("lockout", "locked until "+pre.LockedUntil.Format(time.RFC3339))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	} else if preErr != nil && !errors.Is(preErr, store.ErrNotFound) {
		return stop, preErr
	}
	if preErr == nil {
		if v, blocked, err := g.sourceBlocked(ctx, r, pre.Name); blocked || err != nil {
			return v, err
		}
	}

	password := req.Password
	if pol.MFA != policy.MFAOff && (pol.Style != policy.StyleChallenge || req.appendOnly()) {
		if pw, code, ok := splitAppended(req.Password); ok {
			password, r.code = pw, code
		}
	}
	if local && preErr == nil && g.repeatLogin(r, pre, password) {
		r.step("password", fmt.Sprintf("verified by local within the last %s (repeat login, no hash)", r.site.RepeatWindow))
		r.verified, r.password, r.typed = &upstream.Identity{Name: pre.Name, Groups: pre.Groups}, password, &pre
		return pass, nil
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
	case errors.Is(err, upstream.ErrUnreachable):
		r.step("password", "upstream "+pol.Upstream+" unreachable: "+err.Error())
		if pol.Failmode == policy.FailCached {
			return g.fromCache(ctx, r, verifier, password)
		}
		return r.refuse(ReasonUpstreamDown, MsgDenied), nil
	default:
		return g.upstreamRefused(ctx, r, err, pre, preErr == nil)
	}
	r.step("password", "verified by "+pol.Upstream)
	r.verified, r.password = &id, password
	if preErr == nil {
		r.typed = &pre
		if local && r.site.RepeatWindow > 0 && !pre.Disabled && strings.EqualFold(id.Name, pre.Name) {
			g.repeat.remember(pre, password, r.now)
		}
	}
	return pass, nil
}

// repeatLogin is the password stage's shortcut for a local user whose
// password was verified within the site's repeat window (repeat.go). A
// disabled account's entry is dropped here; the posture stage refuses it.
func (g *Gate) repeatLogin(r *run, pre store.User, password secrets.Secret) bool {
	if r.site.RepeatWindow <= 0 {
		g.repeat.clear()
		return false
	}
	if pre.Disabled {
		g.repeat.forget(pre.ID)
		return false
	}
	return g.repeat.match(pre, password, r.site.RepeatWindow, r.now)
}

// upstreamRefused turns an upstream's refusal (any error but
// ErrUnreachable, which each caller handles its own way) into the
// decision. pre is the local record of the name as typed, when known.
func (g *Gate) upstreamRefused(ctx context.Context, r *run, err error, pre store.User, known bool) (verdict, error) {
	pol := r.req.Client.Policy
	switch {
	case errors.Is(err, upstream.ErrUnknownUser):
		r.step("password", "no such user")
		if known {
			// Gone from the directory: not even the cache may let them in.
			g.forgetCached(ctx, pre.Name, pol.Upstream)
		}
		return r.refuse(ReasonUnknownUser, MsgDenied), nil
	case errors.Is(err, upstream.ErrBadCredentials):
		r.step("password", "wrong password ("+pol.Upstream+")")
		v := r.refuse(ReasonBadPassword, MsgDenied)
		if known {
			g.repeat.forget(pre.ID)
			g.forgetCached(ctx, pre.Name, pol.Upstream)
			return v, g.countFailure(ctx, r, pre.Name)
		}
		return v, nil
	case errors.Is(err, upstream.ErrAccountDisabled):
		r.step("password", pol.Upstream+" says the account is disabled")
		if known {
			g.forgetCached(ctx, pre.Name, pol.Upstream)
		}
		return r.refuse(ReasonDisabled, MsgDisabled), nil
	case errors.Is(err, upstream.ErrAccountExpired):
		r.step("password", pol.Upstream+" says the account has expired")
		if known {
			g.forgetCached(ctx, pre.Name, pol.Upstream)
		}
		return r.refuse(ReasonExpired, MsgExpired), nil
	case errors.Is(err, upstream.ErrPasswordExpired):
		r.step("password", pol.Upstream+" says the password has expired")
		return r.refuse(ReasonPasswordExpired, MsgPwExpired), nil
	case errors.Is(err, upstream.ErrMustChange):
		r.step("password", pol.Upstream+" says the password must be changed first")
		return r.refuse(ReasonMustChange, MsgPwExpired), nil
	case errors.Is(err, upstream.ErrAccountLockedOut):
		// Active Directory reports a lock whatever the password, so the
		// person is told nothing more than for a wrong password.
		r.step("password", pol.Upstream+" says the account is locked out")
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	case errors.Is(err, upstream.ErrUpstreamRefused):
		r.step("password", err.Error())
		return r.refuse(ReasonUpstreamRefused, MsgDenied), nil
	}
	return stop, fmt.Errorf("upstream %s: %w", pol.Upstream, err)
}

// fromCache is failmode "cached", a branch of the password stage: the
// upstream could not be asked, so a password it verified recently may
// stand in, but only with a second factor, which the mfa stage then
// demands (TOTP needs no internet).
func (g *Gate) fromCache(ctx context.Context, r *run, verifier upstream.Verifier, password secrets.Secret) (verdict, error) {
	req, pol := r.req, r.req.Client.Policy
	// Every refusal before the hash comparison still costs one hash, so
	// timing tells nothing about what is cached.
	fail := func(why string) (verdict, error) {
		if err := g.hasher.Dummy(ctx, password); err != nil {
			return stop, err
		}
		r.step("cache", why)
		return r.refuse(ReasonUpstreamDown, MsgDenied), nil
	}
	u, err := g.localUser(ctx, verifier, req.User)
	if errors.Is(err, store.ErrNotFound) {
		return fail("no verified password cached for this user")
	}
	if err != nil {
		return stop, err
	}
	v, err := g.store.CachedVerifierFor(ctx, u.ID, pol.Upstream)
	if errors.Is(err, store.ErrNotFound) {
		return fail("no verified password cached for this user")
	}
	if err != nil {
		return stop, err
	}
	if age := r.now.Sub(v.VerifiedAt); age > r.site.CacheWindow {
		return fail(fmt.Sprintf("the cached password was verified %s ago, longer than the %s allowed", age.Round(time.Minute), r.site.CacheWindow))
	}
	ok, err := g.hasher.Verify(ctx, v.Hash, password)
	if err != nil {
		return stop, err
	}
	if !ok {
		r.step("cache", "password does not match the one last verified")
		return r.refuse(ReasonBadPassword, MsgDenied), g.countFailure(ctx, r, u.Name)
	}
	if _, err := g.store.TOTP(ctx, u.ID); errors.Is(err, store.ErrNotFound) {
		r.step("cache", "password matches the cached one, but accepting from the cache needs TOTP and the user has not enrolled")
		return r.refuse(ReasonUpstreamDown, MsgDenied), nil
	} else if err != nil {
		return stop, err
	}
	r.step("cache", fmt.Sprintf("password matches the one %s verified %s ago", pol.Upstream, r.now.Sub(v.VerifiedAt).Round(time.Minute)))
	r.d.Notes = append(r.d.Notes, "accepted_from_cached_credential")
	r.user = u
	r.user.Groups = unionGroups(u.Groups, v.Groups)
	r.d.User, r.d.Groups = u.Name, r.user.Groups
	r.forceMFA = true
	return pass, nil
}

// account finds, or for a directory user's first login creates, the local
// record of whom the upstream vouched for, and refuses it when locked or
// when it is a local account of the same name. A challenge answer or the
// credential cache named the record already.
func (g *Gate) account(ctx context.Context, r *run) (verdict, error) {
	id, pol := r.verified, r.req.Client.Policy
	if id == nil {
		if r.user.ID == 0 {
			// Fail closed should a stage before forget to name the user.
			return stop, errors.New("no verified user reached the account stage")
		}
		return pass, nil
	}
	local := pol.Upstream == "local"
	if !validUserName(id.Name) {
		r.step("account", fmt.Sprintf("%s returned an unusable user name %q", pol.Upstream, auditName(id.Name)))
		return r.refuse(ReasonUpstreamRefused, MsgDenied), nil
	}
	var u store.User
	var err error
	if r.typed != nil && strings.EqualFold(r.typed.Name, id.Name) {
		u = *r.typed
	} else {
		u, err = g.store.CachedUserByName(ctx, id.Name)
	}
	if errors.Is(err, store.ErrNotFound) && !local {
		u, err = g.provision(ctx, r, id.Name, pol.Upstream)
	}
	if err != nil {
		return stop, fmt.Errorf("user %q verified but not readable: %w", id.Name, err)
	}
	// The lock may be on the record the name as typed did not find.
	if u.LockedUntil.After(r.now) {
		r.step("lockout", "locked until "+u.LockedUntil.Format(time.RFC3339))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	}
	// An upstream vouches for its own users only: a local account of the
	// same name with its own password (and so its own groups, factor and
	// devices) is another person as far as the appliance knows.
	if !local && !strings.EqualFold(u.Source, pol.Upstream) && u.PasswordHash != "" {
		r.step("account", fmt.Sprintf("%s verified %q, but a local account with its own password has that name; rename one of them", pol.Upstream, u.Name))
		return r.refuse(ReasonUpstreamRefused, MsgDenied), nil
	}
	r.user = u
	r.user.Groups = unionGroups(u.Groups, id.Groups)
	r.d.User, r.d.Groups = u.Name, r.user.Groups
	r.passthrough = id.Reply
	if r.password == nil {
		// MS-CHAPv2: no password to cache or to take an NT hash of.
		return pass, nil
	}
	if !local && pol.Failmode == policy.FailCached {
		g.queueCache(ctx, u.ID, pol.Upstream, r.password, id.Groups)
	}
	if pol.AllowMSCHAP && (r.req.Method == MethodPAP || r.req.Method == MethodTTLSPAP) {
		g.keepNTHash(ctx, r, u)
	}
	return pass, nil
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

// posture checks the account and the device: not disabled or expired,
// within its allowed hours, in a group the client lets in, and on a
// registered device where the client requires one.
func (g *Gate) posture(ctx context.Context, r *run) (verdict, error) {
	u, pol := r.user, r.req.Client.Policy
	if u.Disabled {
		r.step("account", "disabled")
		return r.refuse(ReasonDisabled, MsgDisabled), nil
	}
	if !u.ExpiresAt.IsZero() && !r.now.Before(u.ExpiresAt) {
		r.step("account", "expired at "+u.ExpiresAt.Format(time.RFC3339))
		return r.refuse(ReasonExpired, MsgExpired), nil
	}
	hours, err := policy.ParseHours(u.Hours)
	if err != nil {
		// Refused when set; a hand-edited value fails closed.
		r.step("hours", "unreadable allowed hours: "+err.Error())
		return r.refuse(ReasonOutsideHours, MsgOutsideHours), nil
	}
	local := r.now.In(r.site.TimeZone)
	if ok, _ := hours.Remaining(local); !ok {
		r.step("hours", fmt.Sprintf("%s is outside %q (%s)", local.Format("Mon 15:04"), hours, r.site.TimeZone))
		return r.refuse(ReasonOutsideHours, MsgOutsideHours), nil
	}
	if !pol.GroupAllowed(u.Groups) {
		r.step("groups", fmt.Sprintf("member of %v, client allows %v", u.Groups, pol.AllowedGroups))
		return r.refuse(ReasonGroupNotAllowed, MsgNotAllowed), nil
	}
	if pol.RequireDevice {
		mac, err := policy.NormalizeMAC(r.req.Device)
		if err != nil {
			r.step("device", "no MAC address in the request")
			return r.refuse(ReasonDeviceMissing, MsgDevice), nil
		}
		dev, err := g.store.DeviceByMAC(ctx, mac)
		if err != nil || dev.UserID != u.ID {
			r.step("device", mac+" is not registered to this user")
			return r.refuse(ReasonDeviceUnknown, MsgDevice), nil
		}
		r.step("device", mac+" registered")
	}
	if v, err := g.devicePosture(ctx, r); v != pass || err != nil {
		return v, err
	}
	if r.quarantine == nil {
		r.step("posture", "passed")
	}
	return pass, nil
}

// secondFactor checks a code: the answer to a challenge, or one appended
// to the password; or finds one verified recently (MFARemember); or asks
// for one with a challenge. It passes when the client's policy needs no
// code, or lets users who have not enrolled in during a roll-out.
func (g *Gate) secondFactor(ctx context.Context, r *run) (verdict, error) {
	pol := r.req.Client.Policy
	if r.answer != nil && r.answer.provider != "" {
		return g.resumePush(ctx, r, r.answer)
	}
	if r.answer != nil {
		// The challenge was issued under the policy of its first round:
		// the code is checked whatever the policy says now.
		enr, err := g.store.TOTP(ctx, r.user.ID)
		if errors.Is(err, store.ErrNotFound) {
			r.step("mfa", "enrolment removed since the challenge")
			return r.refuse(ReasonMFANotEnrolled, MsgNotEnrolled), nil
		}
		if err != nil {
			return stop, err
		}
		r.code = secrets.Secret(strings.TrimSpace(string(r.req.Password)))
		return g.checkCode(ctx, r, enr)
	}
	if pol.MFA == policy.MFAOff && !r.forceMFA {
		r.step("mfa", "off for this client")
		return pass, nil
	}
	if r.req.Method == MethodEAPTLS {
		// The certificate's private key, kept on a managed device, is the
		// possession factor; the EAP server verified it (docs/mschap.md).
		r.step("mfa", "the client certificate's private key on the device is the second factor (EAP-TLS)")
		r.d.Notes = append(r.d.Notes, "mfa_by_certificate")
		return pass, nil
	}
	if name := pol.Push.ProviderFor(r.user.Groups); name != "" && name != policy.TOTP && !r.forceMFA {
		// Push MFA (push.go); it returns here only to fall back to TOTP.
		if v, err, handled := g.pushFactor(ctx, r, name); handled {
			return v, err
		}
	}
	enr, err := g.store.TOTP(ctx, r.user.ID)
	if errors.Is(err, store.ErrNotFound) {
		if r.req.noCode() && (pol.MFA == policy.MFARequired || r.forceMFA) {
			r.step("mfa", "required, but the user has not enrolled, and "+mfaUnavailable)
			return r.refuse(ReasonMFAUnavailable, MsgDenied), nil
		}
		if pol.MFA == policy.MFARequired || r.forceMFA {
			r.step("mfa", "required, but the user has not enrolled")
			return r.refuse(ReasonMFANotEnrolled, MsgNotEnrolled), nil
		}
		r.step("mfa", "user not enrolled; client allows that during roll-out")
		r.d.Notes = append(r.d.Notes, "mfa_not_enrolled")
		return pass, nil
	}
	if err != nil {
		return stop, fmt.Errorf("mfa enrolment: %w", err)
	}
	if pol.MFARemember > 0 && !r.forceMFA && g.remembered.ok(rememberKey(r, enr.Seed), r.user.Version, r.now) {
		// The code typed with the password, if any, is not checked again:
		// an EHR repeats what the user typed once, and that code is spent.
		r.step("mfa", fmt.Sprintf("a code was verified for this user from %s within the last %s", r.req.Source, time.Duration(pol.MFARemember)*time.Second))
		r.d.Notes = append(r.d.Notes, "mfa_remembered")
		return pass, nil
	}
	if r.code != nil {
		return g.checkCode(ctx, r, enr)
	}
	if r.req.noCode() {
		r.step("mfa", "a code is needed and "+mfaUnavailable)
		return r.refuse(ReasonMFAUnavailable, MsgDenied), nil
	}
	// LDAP and EAP-TTLS have no challenge round: a code can only come
	// appended to the password.
	if pol.Style == policy.StyleAppend || r.req.appendOnly() {
		r.step("mfa", "no code appended to the password")
		return r.refuse(ReasonMFARequired, MsgAppendCode), nil
	}
	state, ok := g.challenges.put(challenge{
		user: r.user.Name, typed: r.req.User, userID: r.user.ID, client: r.req.Client.Name,
		source: r.req.Source.String(), expires: r.now.Add(r.site.ChallengeTTL),
		groups: r.user.Groups, notes: r.d.Notes, passthrough: r.passthrough,
	}, r.now)
	if !ok {
		r.step("mfa", "too many pending challenges")
		return r.refuse(ReasonChallengeFull, MsgBusy), nil
	}
	r.step("mfa", "code requested")
	r.d.Outcome, r.d.Reason, r.d.Message, r.d.State = Challenge, ReasonMFAChallenge, MsgEnterCode, state
	return stop, nil
}

// checkCode checks r.code against the enrolment, once per time step.
func (g *Gate) checkCode(ctx context.Context, r *run, enr store.TOTP) (verdict, error) {
	step, ok, err := mfa.Match(enr.Seed, string(r.code), r.now, r.site.TOTPWindow, enr.Digits, enr.Period, enr.Algorithm)
	if err != nil {
		return stop, err
	}
	if !ok {
		r.step("mfa", "wrong code")
		return r.refuse(ReasonMFABadCode, MsgBadCode), g.countFailure(ctx, r, r.user.Name)
	}
	fresh, err := g.store.ConsumeTOTPStep(ctx, r.user.ID, step)
	if err != nil {
		return stop, err
	}
	if !fresh {
		r.step("mfa", "code already used")
		return r.refuse(ReasonMFAReplay, MsgBadCode), g.countFailure(ctx, r, r.user.Name)
	}
	r.step("mfa", "code accepted")
	if pol := r.req.Client.Policy; pol.MFARemember > 0 && !r.forceMFA {
		g.remembered.put(rememberKey(r, enr.Seed), r.user.Version, r.now.Add(time.Duration(pol.MFARemember)*time.Second), r.now)
	}
	return pass, nil
}

// authorize turns the user's groups into reply attributes and bounds the
// session by the allowed hours and the account's expiry. The walker
// accepts once it passes.
func (g *Gate) authorize(ctx context.Context, r *run) (verdict, error) {
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
			return stop, err
		}
	}
	g.loginThrottle.clear(loginSource(r, u.Name))
	r.d.Passthrough = r.passthrough
	if q := r.quarantine; q != nil {
		// The device failed the client's rule: the quarantine VLAN or
		// role replaces the group's, and no upstream attribute may place
		// the station anywhere else.
		attrs.VLAN, attrs.FilterID, attrs.Class = q.VLAN, q.FilterID, ""
		r.d.Passthrough = nil
		r.step("authorize", "quarantine: "+r.req.Client.Policy.Posture.String())
	}
	r.d.Attributes = attrs
	r.d.MSCHAP = r.mschap
	return pass, nil
}

// countFailure records a failed password or code and locks the account at
// the threshold.
func (g *Gate) countFailure(ctx context.Context, r *run, name string) error {
	// A failed password or code voids the user's repeat-login entry.
	if u, err := g.store.CachedUserByName(ctx, name); err == nil {
		g.repeat.forget(u.ID)
	}
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
	if g.loginThrottle.failN(loginSource(r, u.Name), r.now, r.site.LockoutThreshold, r.site.LockoutDuration, r.site.LockoutDuration) {
		until := r.now.Add(r.site.LockoutDuration)
		r.step("lockout", fmt.Sprintf("%d failures for %s from this source: it is refused until %s; other sources are not", r.site.LockoutThreshold, u.Name, until.Format(time.RFC3339)))
		r.d.Notes = append(r.d.Notes, "source_blocked_now")
		_, err := g.audit.Append(ctx, audit.Entry{
			Kind: audit.KindSystem, Door: string(r.req.Door), Client: r.req.Client.Name, User: u.Name,
			Source: r.req.Source.String(), Device: r.req.Device, Outcome: "locked", Reason: string(ReasonLockedOut),
			Detail: fmt.Sprintf("source blocked until %s after %d failed attempts (%s); the account is not locked", until.Format(time.RFC3339), r.site.LockoutThreshold, describeSource(r)),
		})
		if err != nil {
			return err
		}
		g.log.Warn("login source blocked", "user", u.Name, "client", r.req.Client.Name, "source", r.req.Source.String(), "until", until)
	}
	var lo store.Lockout
	err = g.store.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		lo, err = tx.RecordFailure(ctx, u.ID, r.now, accountLockFactor*r.site.LockoutThreshold, r.site.LockoutDuration)
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

// noCode reports a request whose method cannot carry a code at all:
// MS-CHAPv2, with or without PEAP.
func (req Request) noCode() bool {
	return req.Method == MethodMSCHAPv2 || req.Method == MethodPEAP
}

// mfaUnavailable ends an mfa step refusing MS-CHAPv2: what the contractor
// can do about it.
const mfaUnavailable = "MS-CHAPv2 cannot carry one; use EAP-TTLS with the code appended (password,123456), or EAP-TLS, or set this client's mfa off"

// appendOnly reports a request that cannot answer a challenge: an LDAP
// bind, or a password inside an EAP-TTLS tunnel.
func (req Request) appendOnly() bool {
	return req.Door == DoorLDAP || req.Method == MethodTTLSPAP
}

// sourceBlocked refuses a login for user from a source that failed it
// lockout_threshold times (throttle.go), at the cost of a hash like a
// locked account.
func (g *Gate) sourceBlocked(ctx context.Context, r *run, user string) (verdict, bool, error) {
	if r.site.LockoutThreshold == 0 {
		return pass, false, nil
	}
	until, blocked := g.loginThrottle.blocked(loginSource(r, user), r.now)
	if !blocked {
		return pass, false, nil
	}
	if err := g.hasher.Dummy(ctx, r.req.Password); err != nil {
		return stop, true, err
	}
	r.step("lockout", fmt.Sprintf("too many failures for %s from this source (%s); refused until %s; the account is not locked", user, describeSource(r), until.Format(time.RFC3339)))
	return r.refuse(ReasonLockedOut, MsgDenied), true, nil
}
