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
	return g.finish(ctx, r, g.bindService(ctx, r))
}

func (g *Gate) bindService(ctx context.Context, r *run) error {
	req := r.req
	if req.Plaintext && !req.Client.Policy.AllowPlainLDAP {
		r.step("request", "the secret came over plain LDAP; this client's policy requires LDAPS or StartTLS")
		r.refuse(ReasonTLSRequired, MsgDenied)
		return nil
	}
	acct, err := g.store.BindAccountByName(ctx, req.User)
	if errors.Is(err, store.ErrNotFound) {
		r.step("bind account", "no such bind account")
		r.refuse(ReasonUnknownUser, MsgDenied)
		return nil
	}
	if err != nil {
		return fmt.Errorf("bind account: %w", err)
	}
	// Compare digests so the time taken says nothing about the length.
	want, got := sha256.Sum256(acct.Secret), sha256.Sum256(req.Password)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 || len(req.Password) == 0 {
		r.step("bind account", "wrong secret")
		r.refuse(ReasonBadPassword, MsgDenied)
		return nil
	}
	if !slices.ContainsFunc(acct.Networks, func(p netip.Prefix) bool { return p.Contains(req.Source.Unmap()) }) {
		r.step("bind account", fmt.Sprintf("%s is outside the account's networks %v", req.Source, acct.Networks))
		r.refuse(ReasonNotAllowedNet, MsgDenied)
		return nil
	}
	r.step("bind account", "secret and network accepted; may search")
	r.d.Outcome, r.d.Reason, r.d.Message, r.d.User = Accept, ReasonOK, "", acct.Name
	return nil
}
