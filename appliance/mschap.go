package appliance

// MS-CHAPv2 (RFC 2759), a branch of the password stage: the response is
// checked against the NT hash the appliance keeps for the user, or
// relayed to a RADIUS upstream that checks it itself. There is no third
// way: with neither, the login is refused and the step says how to get one.

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"layeh.com/radius/rfc2759"
	"layeh.com/radius/rfc3079"

	"github.com/clinicgate/clinicgate/appliance/passwd"
	"github.com/clinicgate/clinicgate/appliance/store"
	"github.com/clinicgate/clinicgate/appliance/upstream"
)

// ntHashFix is what the contractor can do about a missing NT hash.
const ntHashFix = "an NT hash is kept at the user's next password set or PAP/EAP-TTLS login through a client with --allow-mschap; or use a RADIUS upstream such as NPS or FreeRADIUS that checks MS-CHAPv2"

// mschapFactor verifies an MS-CHAPv2 response (MethodMSCHAPv2, MethodPEAP).
func (g *Gate) mschapFactor(ctx context.Context, r *run) (verdict, error) {
	req, pol, m := r.req, r.req.Client.Policy, r.req.MSCHAP
	// The account is looked up without the DOMAIN\ a VPN gateway may pass
	// on; the response was hashed over the name without it as well.
	account := stripDomain(req.User)
	hashName := stripDomain(m.Name)
	if m.Name == "" {
		hashName = account
	}
	verifier, err := g.lookupUpstream(ctx, pol.Upstream)
	if err != nil {
		r.step("password", "upstream "+pol.Upstream+" cannot be used: "+err.Error())
		return r.refuse(ReasonUpstreamDown, MsgDenied), nil
	}
	local := pol.Upstream == "local"
	pre, preErr := g.localUser(ctx, verifier, account)
	if preErr == nil && pre.LockedUntil.After(r.now) {
		r.step("lockout", "locked until "+pre.LockedUntil.Format(time.RFC3339))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	} else if preErr != nil && !errors.Is(preErr, store.ErrNotFound) {
		return stop, preErr
	}
	if until, blocked := g.loginThrottle.blocked(loginSource(r, pre.Name), r.now); preErr == nil && blocked && r.site.LockoutThreshold > 0 {
		r.step("lockout", fmt.Sprintf("too many failures for %s from this source (%s); refused until %s; the account is not locked", pre.Name, describeSource(r), until.Format(time.RFC3339)))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	}

	if mv, ok := upstream.MSCHAPOf(verifier); ok && !local {
		id, proof, err := mv.VerifyMSCHAPv2(ctx, account, upstream.MSCHAPv2{
			Name: m.Name, AuthenticatorChallenge: m.AuthenticatorChallenge, PeerChallenge: m.PeerChallenge,
			NTResponse: m.NTResponse, Ident: m.Ident,
		})
		switch {
		case errors.Is(err, upstream.ErrUnreachable):
			// The credential cache holds an argon2id hash, which cannot
			// check an MS-CHAPv2 response: failmode cached does not apply.
			r.step("password", "upstream "+pol.Upstream+" unreachable: "+err.Error())
			return r.refuse(ReasonUpstreamDown, MsgDenied), nil
		case err != nil:
			return g.upstreamRefused(ctx, r, err, pre, preErr == nil)
		}
		r.step("password", "MS-CHAPv2 response verified by "+pol.Upstream)
		if proof.SendKey == nil {
			r.d.Notes = append(r.d.Notes, "upstream_sent_no_mppe_keys")
		}
		r.verified = &id
		r.mschap = &MSCHAPResult{AuthenticatorResponse: proof.AuthenticatorResponse, RecvKey: proof.RecvKey, SendKey: proof.SendKey}
		if preErr == nil {
			r.typed = &pre
		}
		return pass, nil
	}

	// A kept NT hash.
	if preErr != nil {
		if local {
			r.step("password", "no such user")
			return r.refuse(ReasonUnknownUser, MsgDenied), nil
		}
		r.step("password", fmt.Sprintf("upstream %s cannot check MS-CHAPv2 and the user has no local record, so no NT hash is kept; %s", pol.Upstream, ntHashFix))
		return r.refuse(ReasonNTHashMissing, MsgDenied), nil
	}
	// A hash vouches only for the source it was captured from: a user an
	// upstream provisioned has no local password, and a local user is not
	// the upstream's.
	if want := map[bool]string{true: "local", false: pol.Upstream}[local]; !strings.EqualFold(pre.Source, want) {
		r.step("password", fmt.Sprintf("the user's record comes from %s, not %s, so no NT hash of theirs applies here; %s", pre.Source, want, ntHashFix))
		return r.refuse(ReasonNTHashMissing, MsgDenied), nil
	}
	nt, err := g.store.NTHash(ctx, pre.ID)
	if errors.Is(err, store.ErrNotFound) {
		r.step("password", "no NT hash is kept for this user; "+ntHashFix)
		return r.refuse(ReasonNTHashMissing, MsgDenied), nil
	}
	if err != nil {
		return stop, err
	}
	res, ok := checkNTResponse(nt, m, hashName)
	clear(nt)
	if !ok {
		r.step("password", "wrong password (the MS-CHAPv2 response does not match the NT hash kept for this user)")
		return r.refuse(ReasonBadPassword, MsgDenied), g.countFailure(ctx, r, pre.Name)
	}
	if local {
		r.step("password", "MS-CHAPv2 response matches the NT hash kept for this user")
	} else {
		r.step("password", "MS-CHAPv2 response matches the NT hash kept from the user's last password login through "+pol.Upstream)
	}
	r.verified, r.typed, r.mschap = &upstream.Identity{Name: pre.Name}, &pre, &res
	return pass, nil
}

// checkNTResponse checks an MS-CHAPv2 response against an NT hash in
// constant time (RFC 2759 §8.1) and, when it matches, derives the
// authenticator response (§8.7) and the MPPE keys (RFC 3079 §3.4), all
// from the hash: the password itself is never needed.
func checkNTResponse(ntHash []byte, m *MSCHAPv2, name string) (MSCHAPResult, bool) {
	challenge := rfc2759.ChallengeHash(m.PeerChallenge[:], m.AuthenticatorChallenge[:], []byte(name))
	want := rfc2759.ChallengeResponse(challenge, ntHash)
	if subtle.ConstantTimeCompare(want, m.NTResponse[:]) != 1 {
		return MSCHAPResult{}, false
	}
	hashHash := rfc2759.NTPasswordHash(ntHash) // MD4 of the NT hash
	h := sha1.New()
	h.Write(hashHash)
	h.Write(m.NTResponse[:])
	h.Write([]byte("Magic server to client signing constant"))
	digest := h.Sum(nil)
	h = sha1.New()
	h.Write(digest)
	h.Write(challenge)
	h.Write([]byte("Pad to make it do more than one iteration"))
	res := MSCHAPResult{AuthenticatorResponse: "S=" + strings.ToUpper(hex.EncodeToString(h.Sum(nil)))}
	// RFC 3079 §3.3: on the server, MS-MPPE-Send-Key is the start key
	// derived with IsSend and IsServer (magic 3, "on the server side, it is
	// the send key"), which layeh's isSend=true gives; Recv-Key magic 2.
	master := rfc3079.GetMasterKey(hashHash, m.NTResponse[:])
	res.SendKey, _ = rfc3079.GetAsymmetricStartKey(master, rfc3079.KeyLength128Bit, true)
	res.RecvKey, _ = rfc3079.GetAsymmetricStartKey(master, rfc3079.KeyLength128Bit, false)
	return res, true
}

// keepNTHash keeps the NT hash of a password just verified, for a client
// that allows MS-CHAPv2; it writes only when the hash changed. A failure
// is logged, not fatal: the login itself was verified.
func (g *Gate) keepNTHash(ctx context.Context, r *run, u store.User) {
	nt := passwd.NTHash(r.password)
	changed, err := g.store.KeepNTHash(ctx, u.ID, nt[:], r.now)
	clear(nt[:])
	if err != nil {
		g.log.Warn("could not keep an NT hash", "user", u.Name, "err", err)
		return
	}
	if changed {
		r.d.Notes = append(r.d.Notes, "nt_hash_kept")
	}
}
