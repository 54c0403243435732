package appliance

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/clinicgate/clinicgate/appliance/directory"
	"github.com/clinicgate/clinicgate/appliance/secrets"
	"github.com/clinicgate/clinicgate/appliance/store"
)

// resolveBind turns the name of an LDAP bind, in any form Active Directory
// accepts (a DN, user@domain, DOMAIN\user, a plain name), into the name
// the gate knows, and picks the run's pipeline: a bind account's (an EHR's
// search account: it may search, it never logs a person in, so no MFA) or
// a person's. A name it cannot accept is refused with its reason by the
// request stage, so the audit records the name as it was sent.
func (g *Gate) resolveBind(ctx context.Context, r *run) ([]stage, error) {
	site, err := g.site.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("site settings: %w", err)
	}
	name, account, reason, err := g.bindName(ctx, r.req.User, site.LDAP)
	switch {
	case err != nil:
		return nil, err
	case reason != "":
		r.req.Invalid = reason
		return pipeline, nil
	}
	r.req.User = name
	if account {
		// Audited like any decision, the user recorded as the account's
		// name with the note "bind_account".
		r.d.BindAccount = true
		r.d.Notes = append(r.d.Notes, "bind_account")
		return bindPipeline, nil
	}
	return pipeline, nil
}

// bindName resolves raw under the site's LDAP settings: a DN must lie
// under the base DN and names a bind account by its first RDN, or else a
// user the directory knows at that DN; DOMAIN\user must name the site's
// NetBIOS domain; user@domain loses the site's domain (another domain's
// stays whole, and so names nobody). A non-empty reason refuses the bind;
// an error means the gate could not tell.
func (g *Gate) bindName(ctx context.Context, raw string, site LDAPSite) (name string, account bool, _ Reason, _ error) {
	name = raw
	switch {
	case strings.Contains(raw, "="):
		dn, err := ldap.ParseDN(raw)
		if err != nil || len(dn.RDNs) == 0 || len(dn.RDNs[0].Attributes) != 1 {
			return "", false, ReasonBadUserName, nil
		}
		base, err := ldap.ParseDN(site.BaseDN)
		if err != nil || !base.AncestorOfFold(dn) {
			return "", false, ReasonOutsideBase, nil
		}
		first := dn.RDNs[0].Attributes[0].Value
		if ok, err := g.isBindAccount(ctx, first); err != nil || ok {
			return first, ok, "", err
		}
		n, err := site.Directory.NameForDN(ctx, raw)
		switch {
		case errors.Is(err, directory.ErrUnknownUser):
			return "", false, ReasonUnknownUser, nil
		case err != nil:
			return "", false, ReasonUpstreamDown, nil
		case n == "":
			return "", false, ReasonBadUserName, nil
		}
		// A user's DN never names a bind account: the first RDN was
		// checked above.
		return n, false, "", nil
	case strings.Contains(raw, `\`):
		dom, user, _ := strings.Cut(raw, `\`)
		if !strings.EqualFold(dom, site.NetBIOS) {
			return "", false, ReasonOutsideBase, nil
		}
		name = user
	case strings.Contains(raw, "@"):
		if u, ok := strings.CutSuffix(strings.ToLower(raw), "@"+strings.ToLower(site.Domain)); ok && u != "" {
			name = raw[:len(u)]
		}
	}
	if name == "" {
		return "", false, ReasonBadUserName, nil
	}
	account, err := g.isBindAccount(ctx, name)
	return name, account, "", err
}

// isBindAccount asks the store's in-memory set of bind-account names
// (read again after any change to them), not SQLite on every bind.
func (g *Gate) isBindAccount(ctx context.Context, name string) (bool, error) {
	ok, err := g.store.IsBindAccount(ctx, name)
	if err != nil {
		return false, fmt.Errorf("bind account: %w", err)
	}
	return ok, nil
}

// bindPipeline is a service account's path through the gate.
var bindPipeline = []stage{
	{"request", (*Gate).checkBindTransport},    // TLS unless the client's policy allows plain LDAP
	{"bind account", (*Gate).checkBindAccount}, // the account exists, its secret, its networks
}

func (g *Gate) checkBindTransport(_ context.Context, r *run) (verdict, error) {
	if r.req.Plaintext && !r.req.Client.Policy.AllowPlainLDAP {
		r.step("request", "the secret came over plain LDAP; this client's policy requires LDAPS or StartTLS")
		return r.refuse(ReasonTLSRequired, MsgDenied), nil
	}
	return pass, nil
}

func (g *Gate) checkBindAccount(ctx context.Context, r *run) (verdict, error) {
	req := r.req
	acct, err := g.store.BindAccountByName(ctx, req.User)
	if errors.Is(err, store.ErrNotFound) {
		// The same hash as a known account costs, so the time taken does
		// not tell the names apart (issue 16).
		if err := g.hasher.Dummy(ctx, req.Password); err != nil {
			return stop, err
		}
		r.step("bind account", "no such bind account")
		return r.refuse(ReasonUnknownUser, MsgDenied), nil
	}
	if err != nil {
		return stop, fmt.Errorf("bind account: %w", err)
	}
	key := acct.Name + "\x00" + req.Source.Unmap().String()
	if until, blocked := g.bindThrottle.blocked(key, r.now); blocked {
		r.step("bind account", fmt.Sprintf("too many wrong secrets from %s; refused until %s", req.Source, until.Format(time.RFC3339)))
		return r.refuse(ReasonLockedOut, MsgDenied), nil
	}
	ok, err := g.bindSecretOK(ctx, acct, req.Password)
	if err != nil {
		return stop, err
	}
	if !ok {
		r.step("bind account", "wrong secret")
		if g.bindThrottle.fail(key, r.now) {
			r.step("bind account", fmt.Sprintf("%d wrong secrets from %s: this address is refused for %s", bindFailLimit, req.Source, bindBlock))
		}
		return r.refuse(ReasonBadPassword, MsgDenied), nil
	}
	g.bindThrottle.clear(key)
	if !slices.ContainsFunc(acct.Networks, func(p netip.Prefix) bool { return p.Contains(req.Source.Unmap()) }) {
		r.step("bind account", fmt.Sprintf("%s is outside the account's networks %v", req.Source, acct.Networks))
		return r.refuse(ReasonNotAllowedNet, MsgDenied), nil
	}
	r.step("bind account", "secret and network accepted; may search")
	r.d.User = acct.Name
	return pass, nil
}

// bindSecretOK checks a bind account's secret against its hash, or (a
// row the daemon has not hashed yet) against the sealed secret, hashing
// it then.
func (g *Gate) bindSecretOK(ctx context.Context, acct store.BindAccount, pw secrets.Secret) (bool, error) {
	if len(pw) == 0 {
		return false, g.hasher.Dummy(ctx, pw)
	}
	if acct.Hash != "" {
		return g.hasher.Verify(ctx, acct.Hash, pw)
	}
	// Compare digests so the time taken says nothing about the length.
	want, got := sha256.Sum256(acct.Secret), sha256.Sum256(pw)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return false, g.hasher.Dummy(ctx, pw)
	}
	h, err := g.hasher.Hash(ctx, pw)
	if err == nil {
		err = g.store.WithTx(ctx, func(tx *store.Tx) error { return tx.SetBindAccountHash(ctx, acct.Name, h) })
	}
	if err != nil {
		g.log.Warn("could not hash a bind account's sealed secret", "account", acct.Name, "err", err)
	}
	return true, nil
}
