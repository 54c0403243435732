package appliance

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/clinicgate/clinicgate/appliance/store"
)

// BindService answers an LDAP bind by a service account (an EHR's search
// account): the account must exist, bind from one of its networks, over
// TLS unless the client's policy allows plain LDAP, with its secret. Such
// an account may only search; it never logs a person in, so no MFA. The
// answer is audited like any decision, the user recorded as the account's
// name with the note "bind_account".
func (g *Gate) BindService(ctx context.Context, req Request) (Decision, error) {
	start := g.now()
	d := Decision{Outcome: Reject, Reason: ReasonInternal, Message: MsgDenied}
	req.Method = MethodLDAPBind
	d.Notes = append(append(d.Notes, req.Notes...), "bind_account")
	r := &run{req: &req, d: &d, now: start}
	return g.finish(ctx, r, g.walk(ctx, r, bindPipeline))
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
		r.step("bind account", "no such bind account")
		return r.refuse(ReasonUnknownUser, MsgDenied), nil
	}
	if err != nil {
		return stop, fmt.Errorf("bind account: %w", err)
	}
	// Compare digests so the time taken says nothing about the length.
	want, got := sha256.Sum256(acct.Secret), sha256.Sum256(req.Password)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 || len(req.Password) == 0 {
		r.step("bind account", "wrong secret")
		return r.refuse(ReasonBadPassword, MsgDenied), nil
	}
	if !slices.ContainsFunc(acct.Networks, func(p netip.Prefix) bool { return p.Contains(req.Source.Unmap()) }) {
		r.step("bind account", fmt.Sprintf("%s is outside the account's networks %v", req.Source, acct.Networks))
		return r.refuse(ReasonNotAllowedNet, MsgDenied), nil
	}
	r.step("bind account", "secret and network accepted; may search")
	r.d.User = acct.Name
	return pass, nil
}
